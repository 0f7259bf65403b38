"""Attacks on the relay before any key is checked, against a real agent process and a real nginx-rtmp, with a
healthy ffmpeg stream flowing through the relay meanwhile (tests/hostile/relay_bed.py).

Each attack is judged by the same figures: the agent's RSS stays within 100 MB of where it started, the
healthy stream's bytes at nginx-rtmp never pause for 1 s or more, the agent's event loop answers a ping
within 100 ms throughout; and by its own: the hostile connections are closed (slow handshakes by their
deadline). The attacks are those of issue 22, which broke the relay before its bounds.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
import time
from collections.abc import Iterator

import pytest

from agent.rtmp import amf0
from agent.rtmp import messages as m
from tests.hostile.relay_bed import Bed, healthy_bed
from tests.peers.nginx_rtmp import nginx_rtmp_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
    pytest.mark.skipif(not nginx_rtmp_available()[0], reason=nginx_rtmp_available()[1]),
]

MAX_MESSAGE = 16 * 1024 * 1024 - 1
HANDSHAKE_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with healthy_bed(tmp_path_factory.mktemp("hostile-relay")) as running:
        yield running


def _header(csid: int, length: int, type_id: int, stream_id: int = 0) -> bytes:
    return bytes([csid]) + bytes(3) + length.to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", stream_id)


def _set_chunk_size(size: int) -> bytes:
    return _header(2, 4, m.SET_CHUNK_SIZE) + struct.pack(">I", size)


async def _handshaken(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x03" + bytes(1536))
    answer = await reader.readexactly(1 + 2 * 1536)
    writer.write(answer[1 : 1 + 1536])
    await writer.drain()
    return reader, writer


async def _until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, feed: bytes, timeout_s: float
) -> float:
    """Keep sending `feed` (as a hostile client would) until the relay closes the connection; returns when."""
    started = time.monotonic()

    async def drain_reads() -> None:
        while await reader.read(65536):
            pass

    reading = asyncio.create_task(drain_reads())
    try:
        async with asyncio.timeout(timeout_s):
            while not reading.done():
                writer.write(feed)
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.01)
            await reading
    except ConnectionError:
        pass
    finally:
        reading.cancel()
        writer.close()
    return time.monotonic() - started


async def _unfinished_messages(port: int) -> float:
    """Two 16 MiB-1 messages begun on two chunk streams and never finished, a small message every 4 s."""
    reader, writer = await _handshaken(port)
    writer.write(
        _set_chunk_size(MAX_MESSAGE) + _header(4, MAX_MESSAGE, m.VIDEO, 1) + _header(5, MAX_MESSAGE, m.VIDEO, 1)
    )
    return await _until_closed(reader, writer, bytes(64 * 1024), 60)


def test_unfinished_16_mib_messages_on_30_connections_are_refused_at_the_bound(bed: Bed) -> None:
    since = bed.begin()

    async def attack() -> list[float]:
        return await asyncio.gather(*(_unfinished_messages(bed.agent.relay_port) for _ in range(30)))

    closed_after_s = asyncio.run(attack())
    time.sleep(1)
    bed.assert_unharmed(since)
    assert max(closed_after_s) < 30, closed_after_s  # each was closed, none held on to


def test_a_huge_chunk_size_with_one_unfinished_16_mib_chunk_is_refused(bed: Bed) -> None:
    since = bed.begin()

    async def one() -> float:
        reader, writer = await _handshaken(bed.agent.relay_port)
        writer.write(_set_chunk_size(0x7FFFFFFF) + _header(6, MAX_MESSAGE, m.VIDEO, 1))
        return await _until_closed(reader, writer, bytes(64 * 1024), 60)

    async def attack() -> list[float]:
        return await asyncio.gather(*(one() for _ in range(10)))

    closed_after_s = asyncio.run(attack())
    time.sleep(1)
    bed.assert_unharmed(since)
    assert max(closed_after_s) < 30, closed_after_s


def test_slow_handshakes_are_closed_by_their_deadline_a_byte_every_second_or_not(bed: Bed) -> None:
    since = bed.begin()

    async def dribble() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", bed.agent.relay_port)
        started = time.monotonic()
        try:
            async with asyncio.timeout(60):
                while True:
                    writer.write(b"\x03")
                    await writer.drain()
                    try:
                        async with asyncio.timeout(1.0):
                            if not await reader.read(65536):
                                break
                    except TimeoutError:
                        continue
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.monotonic() - started

    async def attack() -> list[float]:
        return await asyncio.gather(*(dribble() for _ in range(20)))

    open_for_s = asyncio.run(attack())
    bed.assert_unharmed(since)
    # 20 connections (under relay.max_connections): each closed by the handshake deadline, none before it.
    assert max(open_for_s) < HANDSHAKE_TIMEOUT_S + 3, open_for_s
    assert min(open_for_s) > HANDSHAKE_TIMEOUT_S - 1, open_for_s


def test_a_thousand_idle_connections_are_capped_and_closed_by_the_deadline(bed: Bed) -> None:
    since = bed.begin()

    async def idle(opened: list[float]) -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", bed.agent.relay_port)
        started = time.monotonic()
        opened.append(started)
        try:
            writer.write(b"\x03" + bytes(100))
            async with asyncio.timeout(60):
                while await reader.read(65536):
                    pass
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.monotonic() - started

    async def attack() -> list[float]:
        opened: list[float] = []
        tasks = []
        for _ in range(1000):
            tasks.append(asyncio.create_task(idle(opened)))
            await asyncio.sleep(0.002)
        return await asyncio.gather(*tasks)

    open_for_s = asyncio.run(attack())
    bed.assert_unharmed(since)
    assert max(open_for_s) < HANDSHAKE_TIMEOUT_S + 3, sorted(open_for_s)[-5:]


def _amf0_bomb_connect(elements: int) -> bytes:
    """The issue's bomb: a connect whose command object is a strict array of `elements` empty objects."""
    return amf0.encode("connect", 1.0) + b"\x0a" + elements.to_bytes(4, "big") + b"\x03\x00\x00\x09" * elements


def test_amf0_bombs_never_hold_the_event_loop(bed: Bed) -> None:
    since = bed.begin()
    big = _amf0_bomb_connect(4_000_000)  # 16 MiB: refused at its header (commands are 64 KiB before publish)
    small = _amf0_bomb_connect(16_000)  # 64 KiB: refused at the array's count, before building an element
    # Just under a read's bound of AMF0 values (256), sent again and again by 14 connections at once.
    budget = amf0.encode("connect", 1.0, [{f"k{i}": None for i in range(250)}])

    async def send(body: bytes, repeat: int) -> float:
        try:
            reader, writer = await _handshaken(bed.agent.relay_port)
        except (ConnectionError, asyncio.IncompleteReadError):
            return 0.0  # closed at once (relay.max_connections): nothing to hold
        # One message per chunk (chunk size 16 MiB-1): the first with a full header, the rest type 1.
        wire = _set_chunk_size(0xFFFFFF) + _header(3, len(body), m.COMMAND_AMF0) + body
        wire += _continuation(body) * (repeat - 1)
        return await _until_closed(reader, writer, wire, 60)

    async def attack() -> list[float]:
        return await asyncio.gather(
            *(send(big, 1) for _ in range(4)),
            *(send(small, 1) for _ in range(8)),
            *(send(budget, 800) for _ in range(14)),
        )

    closed_after_s = asyncio.run(attack())
    time.sleep(1)
    bed.assert_unharmed(since)
    assert max(closed_after_s) < 30, closed_after_s


def _continuation(body: bytes) -> bytes:
    # The same command again on chunk stream 3, as a type 1 header (a new message, same stream id).
    return bytes([0x43]) + bytes(3) + len(body).to_bytes(3, "big") + bytes([m.COMMAND_AMF0]) + body


def test_three_hundred_malformed_connections_write_a_handful_of_log_lines(bed: Bed) -> None:
    since = bed.begin()
    lines_before = len(bed.agent.log.splitlines())
    dropped_before = bed.agent.relay_sample()["connections_dropped_total"]
    assert isinstance(dropped_before, int)

    async def malformed() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", bed.agent.relay_port)
        writer.write(b"\x07" + bytes(1536))  # RTMP version 7
        await _until_closed(reader, writer, b"", 30)

    async def attack() -> None:
        for _ in range(10):
            await asyncio.gather(*(malformed() for _ in range(30)))

    asyncio.run(attack())
    time.sleep(1.5)  # a relay sample after the last one
    bed.assert_unharmed(since)
    dropped = bed.agent.relay_sample()["connections_dropped_total"]
    assert isinstance(dropped, int) and dropped - dropped_before >= 300  # each one seen and closed
    new_lines = bed.agent.log.splitlines()[lines_before:]
    assert len([line for line in new_lines if "RTMP version 7" in line]) <= 5, new_lines
    assert len(new_lines) <= 10, new_lines  # per peer address: 5 a minute, then one line holding back the rest
    assert "holding back more" in bed.agent.log

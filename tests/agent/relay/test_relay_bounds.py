"""The relay's connection-level bounds on loopback: the handshake deadline, the connection cap, the read
buffer that grows only for a publishing connection, rate-limited warnings, clean encoder names."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.relay.encoder_link import READ_BUFFER_BYTES, SMALL_READ_BUFFER_BYTES, EncoderLink
from agent.relay.relay import Relay
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from agent.rtmp.connection import Role, RtmpConnection
from tests.agent.relay.helpers import running_relay, until
from tests.agent.rtmp.mini_ingest import mini_ingest


def _links(relay: Relay) -> list[EncoderLink]:
    return list(relay._links)


async def _handshaken(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RtmpConnection(Role.CLIENT)
    writer.write(client.data_to_send())
    await reader.readexactly(1 + 2 * 1536)
    writer.write(bytes(1536))
    await writer.drain()
    return reader, writer


async def _closed(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            while await reader.read(65536):
                pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def test_a_handshake_dribbled_a_byte_at_a_time_is_closed_at_its_deadline_not_kept_alive() -> None:
    async with (
        mini_ingest() as ingest,
        running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", handshake_timeout_s=1.0, idle_timeout_s=30) as relay,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        closed = asyncio.create_task(_closed(reader, 20))
        try:
            # One byte every 0.2 s: never silent for the 1 s the old rule measured, so it stayed for ever.
            for _ in range(60):
                if closed.done():
                    break
                writer.write(b"\x03")
                await asyncio.sleep(0.2)
            assert closed.done() and closed.result(), "the dribbling handshake is still open after 12 s"
        finally:
            writer.close()
        assert relay.ingress.connections_dropped_total == 1


async def test_past_max_connections_the_oldest_that_is_not_publishing_goes_and_the_live_one_stays() -> None:
    async with (
        mini_ingest() as ingest,
        running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", max_connections=4, idle_timeout_s=30) as relay,
    ):
        assert relay.port is not None
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/key") as encoder:
            idle = [await _handshaken(relay.port) for _ in range(3)]
            await until(lambda: len(_links(relay)) == 4, 5, "four connections")
            more = [await _handshaken(relay.port) for _ in range(5)]
            # Each new one pushed out the oldest idle one; the publishing encoder was never chosen.
            for reader, _ in idle + more[:2]:
                assert await _closed(reader, 5)
            await until(lambda: len(_links(relay)) == 4, 5, "four connections again")
            assert relay.ingress.publishing
            await encoder.send_video(0, b"\x17\x01" + bytes(3) + b"\x00\x00\x00\x01\x65")
            await until(lambda: any(isinstance(e, m.VideoMessage) for e in ingest.events), 5, "the frame at the ingest")
            for _, writer in idle + more:
                writer.close()


async def test_only_a_publishing_connection_reads_into_a_large_buffer() -> None:
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k") as relay:
        assert relay.port is not None
        _, writer = await _handshaken(relay.port)
        await until(lambda: len(_links(relay)) == 1, 5, "the connection")
        (idle,) = _links(relay)
        assert len(idle.get_buffer(-1)) == SMALL_READ_BUFFER_BYTES
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/key"):
            live = next(link for link in _links(relay) if link is not idle)
            assert live.session.publishing
            assert len(live.get_buffer(-1)) == READ_BUFFER_BYTES
        writer.close()


async def test_three_hundred_malformed_connections_write_a_handful_of_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent.relay")
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k") as relay:
        for _ in range(300):
            _, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            writer.write(b"\x07" + bytes(1536))  # RTMP version 7
            await writer.drain()
            writer.close()
        await until(lambda: relay.ingress.connections_dropped_total == 300, 20, "300 dropped connections")
    lines = [r.getMessage() for r in caplog.records if "127.0.0.1" in r.getMessage()]
    assert len(lines) <= 10, lines
    assert relay.peer_log.held_back_total >= 290


async def test_an_encoder_name_with_a_newline_and_ansi_codes_reaches_the_relay_as_one_clean_line() -> None:
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k") as relay:
        assert relay.port is not None
        _, writer = await _handshaken(relay.port)
        client = RtmpConnection(Role.CLIENT)
        client.receive_data(b"\x03" + bytes(2 * 1536))  # its handshake is done as far as it is concerned
        client.data_to_send()  # C0 C1 C2: already sent by _handshaken
        forged = "FMLE/3.0\n2026-12-05 08:00:00,000 ERROR agent.runtime: \x1b[31mforged\x1b[0m"
        client.send_command("connect", 1, {"app": "live", "flashVer": forged})
        client.send_command("createStream", 2, None)
        client.send_command("publish", 3, None, "key", "live", stream_id=1)
        writer.write(client.data_to_send())
        await until(lambda: relay.ingress.publishing, 5, "the publish")
        assert relay.ingress.encoder == "FMLE/3.0 2026-12-05 08:00:00,000 ERROR agent.runtime: forged"
        writer.close()

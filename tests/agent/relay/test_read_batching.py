"""Reading a frame's worth per wake-up (agent/relay/read_batching.py): the receive low-water mark follows the
stream's rate, drops to one byte when reads stop coming, never delays a message past its bound, and the
relay forwards exactly what it did before."""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from collections.abc import Iterator

import pytest

from agent.relay.read_batching import GUARD_S, MAX_LOW_WATER_BYTES, RETUNE_S, ReadBatching, low_water_bytes
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from tests.agent.relay.helpers import running_relay, until
from tests.agent.rtmp.mini_ingest import mini_ingest

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="SO_RCVLOWAT is read back as set on Linux")

VIDEO_BYTES = 24_000  # a 6 Mbit/s stream at 30 fps: a video frame every 33 ms
AUDIO_BYTES = 400  # AAC at 48 kHz: a frame every 21 ms


def _mark(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT)


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    try:
        yield left, right
    finally:
        left.close()
        right.close()


def _tuned_to_6_mbit(sock: socket.socket, loop: asyncio.AbstractEventLoop) -> tuple[ReadBatching, float]:
    """A batching that has counted a second of a 6 Mbit/s stream (mark 11,250 bytes), and its clock then."""
    batching = ReadBatching(sock, 0.015, loop)
    now = loop.time()
    batching.after_read(1, now)
    batching.after_read(750_000, now + RETUNE_S)
    return batching, now


def test_the_mark_is_what_the_stream_brings_in_the_batch_time() -> None:
    assert low_water_bytes(750_000, 0.015) == 11_250  # 6 Mbit/s, 15 ms
    assert low_water_bytes(20_000, 0.015) == 300  # audio only: below one AAC frame, read as it comes
    assert low_water_bytes(0, 0.015) == 1
    assert low_water_bytes(50e6, 0.04) == MAX_LOW_WATER_BYTES  # never past a quarter of the read buffer


@linux_only
async def test_the_mark_follows_the_rate_and_drops_when_reads_stop(socket_pair: tuple[socket.socket, ...]) -> None:
    sock = socket_pair[0]
    loop = asyncio.get_running_loop()
    batching = ReadBatching(sock, 0.015, loop)
    now = loop.time() - RETUNE_S  # a second ago, so the guard's clock is the loop's
    batching.after_read(10_000, now)
    assert (batching.mark_bytes, _mark(sock)) == (1, 1)  # nothing measured yet
    batching.after_read(740_000, now + RETUNE_S)
    assert batching.mark_bytes == _mark(sock) == 11_250
    await asyncio.sleep(GUARD_S + 0.1)  # no read since: whatever waits below the mark must be read
    assert batching.mark_bytes == _mark(sock) == 1
    batching.after_read(400, loop.time())  # the read that took it: the stream's mark again
    assert batching.mark_bytes == _mark(sock) == 11_250
    await asyncio.sleep(GUARD_S + 0.1)
    assert _mark(sock) == 1


@linux_only
async def test_stop_and_close_leave_the_socket_as_the_kernel_has_it(socket_pair: tuple[socket.socket, ...]) -> None:
    sock = socket_pair[0]
    batching, now = _tuned_to_6_mbit(sock, asyncio.get_running_loop())
    assert _mark(sock) > 1
    batching.stop()
    assert batching.mark_bytes == _mark(sock) == 1
    batching.after_read(750_000, now + 2 * RETUNE_S)  # counting starts again after a stop
    assert _mark(sock) == 1
    batching.close()
    batching.after_read(750_000, now + 4 * RETUNE_S)
    assert _mark(sock) == 1


@linux_only
async def test_a_command_lowers_the_mark_until_the_next_read_of_the_stream(
    socket_pair: tuple[socket.socket, ...],
) -> None:
    sock = socket_pair[0]
    batching, now = _tuned_to_6_mbit(sock, asyncio.get_running_loop())
    batching.lower()  # FCUnpublish came: deleteStream may follow, alone
    assert batching.mark_bytes == _mark(sock) == 1
    batching.after_read(30_000, now + RETUNE_S + 0.03)  # no: the stream goes on, at its own mark
    assert batching.mark_bytes == _mark(sock) == 11_250
    batching.stop()


async def test_zero_and_a_refusing_system_read_every_message(socket_pair: tuple[socket.socket, ...]) -> None:
    loop = asyncio.get_running_loop()
    now = loop.time()
    off = ReadBatching(socket_pair[0], 0.0, loop)
    off.after_read(1, now)
    off.after_read(750_000, now + RETUNE_S)
    assert off.mark_bytes == 1

    class Refusing:  # Windows: setsockopt(SO_RCVLOWAT) fails with WSAENOPROTOOPT
        calls = 0

        def setsockopt(self, *_: object) -> None:
            Refusing.calls += 1
            raise OSError(10042, "An unknown, invalid, or unsupported option was specified")

    refusing = ReadBatching(Refusing(), 0.015, loop)
    for second in range(4):
        refusing.after_read(750_000, now + second * RETUNE_S)
    assert refusing.mark_bytes == 1
    assert Refusing.calls == 1  # tried once, then every message read as it comes


async def _paced_stream(publisher: RtmpPublisher, seconds: float, *, video: bool) -> int:
    """Frames at their real pace (video every 33 ms, audio every 21 ms); returns how many were sent."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    next_video = next_audio = 0.0
    sent = 0
    while (elapsed := loop.time() - start) < seconds:
        if video and elapsed >= next_video:
            await publisher.send_video(int(elapsed * 1000), bytes([0x27, 0x01]) + bytes(VIDEO_BYTES))
            next_video += 1 / 30
            sent += 1
        if elapsed >= next_audio:
            await publisher.send_audio(int(elapsed * 1000), bytes([0xAF, 0x01]) + bytes(AUDIO_BYTES))
            next_audio += 1024 / 48_000
            sent += 1
        await asyncio.sleep(max(0.0, min(next_video if video else 1e9, next_audio) - (loop.time() - start)))
    return sent


def _media_count(events: list[m.Event]) -> int:
    return sum(isinstance(event, m.AudioMessage | m.VideoMessage) for event in events)


def _all_arrived(events: list[m.Event], sent: int) -> bool:
    return _media_count(events) == sent


@linux_only
async def test_a_live_stream_is_read_a_frame_at_a_time_and_nothing_waits_past_its_bound() -> None:
    async with (
        mini_ingest() as ingest,
        running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/key") as relay,
    ):
        publisher = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/anything", chunk_size=4096)
        await publisher.start()
        await until(lambda: all(d.can_send_now() for d in relay.destinations), 10, "the relay to forward")
        await publisher.send_video(0, bytes([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE0]))
        await publisher.send_audio(0, bytes([0xAF, 0x00, 0x11, 0x90]))
        sent = 2 + await _paced_stream(publisher, 2.5, video=True)
        (link,) = relay.encoder_links
        assert link.transport is not None
        kernel_mark = _mark(link.transport.get_extra_info("socket"))
        # About 6.5 Mbit/s: the mark is what 15 ms bring, above an audio frame and below a video frame.
        assert AUDIO_BYTES < link.read_mark_bytes == kernel_mark < VIDEO_BYTES
        await until(lambda: _media_count(ingest.events) == sent, 5, "every frame at the ingest")

        # The video stops, the audio goes on: each audio frame still arrives, without waiting for a frame's
        # worth of bytes (the guard drops the mark within 50 ms; 1 s leaves room for a loaded machine).
        loop = asyncio.get_running_loop()
        for index in range(5):
            started = loop.time()
            await publisher.send_audio(3_000 + index * 21, bytes([0xAF, 0x01]) + bytes(AUDIO_BYTES))
            sent += 1
            arrived = functools.partial(_all_arrived, ingest.events, sent)
            await until(arrived, 1.0, f"audio frame {index} at the ingest")
            assert loop.time() - started < 1.0
        await until(lambda: link.read_mark_bytes == 1, 1.0, "the guard to lower the mark")

        await publisher.close()  # FCUnpublish / deleteStream: the stream ends at once, as before
        await until(lambda: relay.lane is None, 2, "the stream to end")
    assert ingest.errors == []

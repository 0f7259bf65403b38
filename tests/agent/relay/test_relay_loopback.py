"""The relay over loopback sockets: recorded encoders in, a small RTMP ingest out; bad input closes one connection."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.relay.frames import FrameKind
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from agent.rtmp.connection import Role, RtmpConnection
from tests.agent.relay.helpers import running_relay, until
from tests.agent.relay.test_frames import CTS, HEVC_IDR, HEVC_RECORD, HEVC_TRAIL_N, HEVC_TRAIL_R, ex_video
from tests.agent.rtmp.conftest import parse_direction, read_recording
from tests.agent.rtmp.mini_ingest import mini_ingest


def _media(events: list[m.Event]) -> list[tuple[str, int, bytes]]:
    out = []
    for event in events:
        if isinstance(event, m.AudioMessage | m.VideoMessage):
            out.append((type(event).__name__, event.timestamp, event.payload))
        elif isinstance(event, m.DataMessage):
            out.append(("data", event.timestamp, event.payload))
    return out


async def test_recorded_encoder_through_the_relay_reaches_the_ingest_byte_exact(
    fixtures_dir: Path, recording: str
) -> None:
    c2s = read_recording(fixtures_dir, recording, "c2s")
    sent = _media(parse_direction([c2s], "c2s"))
    # The recording arrives all at once (4 s of media in a few ms): thresholds out of its way.
    unbounded = {"disposable_drop_ms": 60_000, "inter_drop_ms": 60_000, "max_queue_ms": 60_000}
    async with (
        mini_ingest() as ingest,
        running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/secretkey", **unbounded) as relay,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        answers = bytearray()
        try:
            for start in range(0, len(c2s), 65536):
                writer.write(c2s[start : start + 65536])
                await writer.drain()
            await until(lambda: len(_media(ingest.events)) >= len(sent), 20, "every frame at the ingest")
            while len(answers) < 3073 + 100:
                answers += await asyncio.wait_for(reader.read(65536), 5)
        finally:
            writer.close()
        await until(lambda: not relay.ingress.publishing, 10, "the relay to notice the encoder left")
        await until(lambda: ingest.closed_sessions == 1, 10, "the relay to unpublish at the ingest")
    assert _media(ingest.events) == sent
    publish = [e for e in ingest.events if isinstance(e, m.Command) and e.name == "publish"]
    assert publish[0].arguments[0] == "secretkey"  # the configured key, whatever the encoder used
    assert relay.ingress.frames_total[FrameKind.VIDEO_KEY] >= 1
    assert relay.destinations[0].frames_out_total == len(sent)
    assert relay.destinations[0].queue.dropped_total == 0
    codes = [e.status_code for e in parse_direction([bytes(answers)], "s2c") if isinstance(e, m.Command)]
    assert "NetStream.Publish.Start" in codes


async def test_eRTMP_hevc_and_av1_frames_pass_through_byte_exact() -> None:
    frames = [
        ex_video(1, 0, b"hvc1", HEVC_RECORD),
        ex_video(1, 1, b"hvc1", CTS + HEVC_IDR + b"\x00" * 5000),
        ex_video(2, 3, b"hvc1", HEVC_TRAIL_R),
        ex_video(2, 3, b"hvc1", HEVC_TRAIL_N),
        ex_video(1, 0, b"av01", b"\x81\x08\x0c\x00"),
        ex_video(1, 1, b"av01", b"\x12\x00\x0a\x0b" * 3000),
        ex_video(2, 1, b"av01", b"\x12\x00\x32\x10"),
    ]
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k") as relay:  # noqa: SIM117 - the encoder leaves first
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/anything") as encoder:
            for index, body in enumerate(frames):
                await encoder.send_video(index * 33, body)
            await until(lambda: sum(isinstance(e, m.VideoMessage) for e in ingest.events) == len(frames), 10, "frames")
    got = [e.payload for e in ingest.events if isinstance(e, m.VideoMessage)]
    assert got == frames
    counted = relay.ingress.frames_total
    assert counted[FrameKind.SEQUENCE_HEADER] == 2 and counted[FrameKind.VIDEO_KEY] == 2
    assert counted[FrameKind.VIDEO_INTER] == 2 and counted[FrameKind.VIDEO_DISPOSABLE] == 1
    assert relay.ingress.video_codec == "av1"


async def test_second_publisher_is_refused_with_badname_while_one_is_live() -> None:
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k") as relay:
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/one"):
            second = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/two", timeout_s=5)
            with pytest.raises(Exception, match="rejected the stream key"):
                await second.start()
        assert relay.ingress.publishers_refused_total == 1
        # Once the first has gone, a new one is welcome.
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/three") as third:
            assert third.publishing


async def _connection_is_closed(port: int, data: bytes, timeout_s: float) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            while await reader.read(65536):
                pass
        return True
    except (ConnectionError, TimeoutError):
        return False
    finally:
        writer.close()


def _handshaken_client() -> tuple[RtmpConnection, bytes]:
    """C0+C1+C2 a server accepts (C2 is not checked against S1, as nginx-rtmp does not check it)."""
    client = RtmpConnection(Role.CLIENT)
    return client, client.data_to_send() + bytes(1536)


async def test_hostile_input_closes_that_connection_with_a_log_line_and_the_relay_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.relay")
    async with (
        mini_ingest() as ingest,
        running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", handshake_timeout_s=0.5, idle_timeout_s=0.5) as relay,
    ):
        port = relay.port
        assert port is not None
        # Not RTMP at all.
        assert await _connection_is_closed(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(2000), 5)
        # Half a handshake, then silence.
        assert await _connection_is_closed(port, b"\x03" + bytes(700), 5)
        # A huge chunk size, then a message claiming 16 MiB that never comes: the encoder stalls.
        _, hello = _handshaken_client()
        huge = bytes([0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]) + (0x7FFFFFFF).to_bytes(4, "big")
        claim = bytes([0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]) + bytes(100)
        assert await _connection_is_closed(port, hello + huge + claim, 5)
        # A connected publisher that stops sending.
        stalled = RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/x")
        await stalled.start()
        await until(lambda: not relay.ingress.publishing, 5, "the stalled publisher to be dropped")
        await stalled.close()
        assert relay.ingress.connections_dropped_total >= 4
        async with RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/after") as healthy:
            await healthy.send_video(0, b"\x17\x01" + CTS + b"\x00\x00\x00\x01\x65")
            await until(lambda: any(isinstance(e, m.VideoMessage) for e in ingest.events), 5, "a frame")
    messages = [record.getMessage() for record in caplog.records]
    assert any("did not finish the RTMP handshake" in text for text in messages)
    assert any("did not send anything" in text for text in messages)
    assert any("RTMP version" in text for text in messages)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=3000))
def test_random_chunk_streams_after_a_handshake_never_escape_as_anything_but_protocol_errors(data: bytes) -> None:
    from agent.errors import ProtocolError
    from agent.relay.publisher import PublisherSession

    session = PublisherSession()
    _, hello = _handshaken_client()
    session.receive_data(hello)
    try:
        session.receive_data(data)
        while session.events():
            session.accept_publish()
    except ProtocolError:
        pass


async def test_a_real_looking_key_sent_to_the_relay_becomes_a_secret_and_a_short_word_does_not() -> None:
    from agent.redact import redact

    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k") as relay:
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/live_1234_abcdefghijkl"):
            pass
        async with RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/stream"):
            pass
    assert "live_1234_abcdefghijkl" not in redact("key live_1234_abcdefghijkl")
    assert redact("the stream is live") == "the stream is live"


async def test_when_the_ingest_drops_the_connection_the_relay_reconnects_and_restarts_with_headers_and_a_keyframe() -> (
    None
):
    from tests.agent.rtmp.mini_ingest import MiniIngest

    ingest = MiniIngest()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await ingest.handle(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sequence_header = b"\x17\x00" + CTS + bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0])
    cut = 0
    try:
        async with (
            running_relay(f"rtmp://127.0.0.1:{port}/live/k") as relay,
            RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/x") as encoder,
        ):
            await encoder.send_video(0, sequence_header)
            for index in range(120):
                key = index % 15 == 0
                await encoder.send_video(index * 33, (b"\x17" if key else b"\x27") + b"\x01" + CTS + bytes(500))
                if index == 20:
                    await until(lambda: sum(isinstance(e, m.VideoMessage) for e in ingest.events) >= 20, 5, "media")
                    cut = len(ingest.events)
                    writers[0].transport.abort()  # the ingest goes away mid-GOP
                await asyncio.sleep(0.02)
            await until(lambda: relay.destinations[0].connects_total == 2, 10, "the relay to reconnect")
            await until(lambda: len(ingest.events) > cut + 20, 10, "frames on the new connection")
    finally:
        server.close()
    # Frames already in the ingest's read buffer when it aborted are still parsed after `cut`: look from the
    # new connection's `connect` on.
    reconnected = next(
        i for i, e in enumerate(ingest.events) if i >= cut and isinstance(e, m.Command) and e.name == "connect"
    )
    after = [e.payload for e in ingest.events[reconnected:] if isinstance(e, m.VideoMessage)]
    assert after[0] == sequence_header  # the new connection gets the cached sequence header first
    pictures = [p for p in after[1:] if p[1] == 1]
    assert pictures[0][0] == 0x17  # and then starts at a keyframe
    assert relay.destinations[0].state in ("live", "idle")

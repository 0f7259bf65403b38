"""The relay's server side against the recorded OBS and ffmpeg sessions: answered as nginx-rtmp answers them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ProtocolError
from agent.relay.frames import Frame, FrameKind
from agent.relay.publisher import PublisherSession, PublishRequested, PublishStopped
from agent.rtmp import messages as m
from agent.rtmp.connection import Role, RtmpConnection
from tests.agent.rtmp.conftest import parse_direction, read_recording


def _replay(data: bytes, piece_size: int) -> tuple[PublisherSession, list[object], bytes]:
    session = PublisherSession()
    events: list[object] = []
    answer = bytearray()
    for start in range(0, len(data), piece_size):
        session.receive_data(data[start : start + piece_size])
        while batch := session.events():
            for event in batch:
                if isinstance(event, PublishRequested):
                    session.accept_publish()
                events.append(event)
        answer += session.data_to_send()
    return session, events, bytes(answer)


def _semantics(events: list[m.Event]) -> list[tuple[object, ...]]:
    """What matters in a server's answer: message kinds, command names, transaction ids, codes, stream ids."""
    out: list[tuple[object, ...]] = []
    for event in events:
        if isinstance(event, m.Command):
            out.append(("command", event.name, event.transaction_id, event.status_code, event.stream_id,
                        event.arguments if event.name == "_result" and not event.info else None))  # fmt: skip
        else:
            out.append((type(event).__name__, event))
    return out


@pytest.mark.parametrize("piece_size", [1, 7, 1500, 1 << 20])
def test_relay_answers_the_recorded_publish_like_nginx_rtmp(
    fixtures_dir: Path, recording: str, piece_size: int
) -> None:
    c2s = read_recording(fixtures_dir, recording, "c2s")
    if piece_size == 1:
        c2s = c2s[:20_000]  # byte by byte through the whole command sequence; media is covered by the others
    _, _, answer = _replay(c2s, piece_size)
    ours = parse_direction([answer], "s2c")
    nginx = parse_direction([read_recording(fixtures_dir, recording, "s2c")], "s2c")
    assert _semantics(ours) == _semantics(nginx)


def test_relay_hands_out_every_recorded_media_and_data_message_byte_exact(fixtures_dir: Path, recording: str) -> None:
    c2s = read_recording(fixtures_dir, recording, "c2s")
    _, events, _ = _replay(c2s, 4096)
    frames = [e for e in events if isinstance(e, Frame)]
    sent = [e for e in parse_direction([c2s], "c2s") if isinstance(e, m.AudioMessage | m.VideoMessage | m.DataMessage)]
    assert len(frames) == len(sent) > 100
    for frame, message in zip(frames, sent, strict=True):
        assert frame.payload == message.payload
        assert frame.timestamp_ms == message.timestamp
    kinds = [f.kind for f in frames]
    assert kinds[0] is FrameKind.METADATA
    assert kinds.count(FrameKind.SEQUENCE_HEADER) == 2  # AVC and AAC
    assert FrameKind.VIDEO_KEY in kinds and FrameKind.VIDEO_INTER in kinds
    assert {f.codec for f in frames if f.type_id == m.VIDEO} == {"avc"}
    assert {f.codec for f in frames if f.type_id == m.AUDIO} == {"aac"}
    (request,) = [e for e in events if isinstance(e, PublishRequested)]
    assert request.app == "live" and request.stream_name == "fixture" and request.encoder.startswith("FMLE/3.0")


def test_deletestream_ends_the_publish_with_unpublish_success_as_nginx_sends_it() -> None:
    session, client = _connected_publisher()
    client.send_command("FCUnpublish", 6, None, "key")
    client.send_command("deleteStream", 7, None, 1.0)
    session.receive_data(client.data_to_send())
    assert [type(e) for e in session.events()] == [PublishStopped]
    client.receive_data(session.data_to_send())
    (status,) = client.events_received()
    assert isinstance(status, m.Command) and status.status_code == "NetStream.Unpublish.Success"


def test_rejected_publish_gets_badname_and_its_media_is_ignored() -> None:
    session = PublisherSession()
    client = RtmpConnection(Role.CLIENT)
    _exchange(session, client)
    client.send_command("connect", 1, {"app": "live"})
    client.send_command("createStream", 2, None)
    client.send_command("publish", 3, None, "key", "live", stream_id=1)
    session.receive_data(client.data_to_send())
    assert any(isinstance(e, PublishRequested) for e in session.events())
    session.reject_publish()
    client.receive_data(session.data_to_send())
    codes = [e.status_code for e in client.events_received() if isinstance(e, m.Command)]
    assert codes[-1] == "NetStream.Publish.BadName"
    client.send_video(0, b"\x17\x01\x00\x00\x00data", stream_id=1)
    session.receive_data(client.data_to_send())
    assert session.events() == [] and session.messages_ignored == 1


def test_garbage_after_the_handshake_is_a_protocol_error() -> None:
    session = PublisherSession()
    client = RtmpConnection(Role.CLIENT)
    _exchange(session, client)
    with pytest.raises(ProtocolError):
        session.receive_data(b"\x44" + b"\xff" * 64)  # type 1 header on a chunk stream never started


def _exchange(session: PublisherSession, client: RtmpConnection) -> None:
    for _ in range(3):
        session.receive_data(client.data_to_send())
        client.receive_data(session.data_to_send())


def _connected_publisher() -> tuple[PublisherSession, RtmpConnection]:
    session = PublisherSession()
    client = RtmpConnection(Role.CLIENT)
    _exchange(session, client)
    client.send_command("connect", 1, {"app": "live"})
    client.send_command("createStream", 2, None)
    client.send_command("publish", 3, None, "key", "live", stream_id=1)
    session.receive_data(client.data_to_send())
    session.events()
    session.accept_publish()
    client.receive_data(session.data_to_send())
    client.events_received()
    return session, client

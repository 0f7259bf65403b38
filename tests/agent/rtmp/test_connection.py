"""The connection state machine in both roles, talking to itself: acknowledgements per window, pings, order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.rtmp import messages as m
from agent.rtmp.chunk_writer import ChunkWriter
from agent.rtmp.connection import Role, RtmpConnection


def _connected_pair() -> tuple[RtmpConnection, RtmpConnection]:
    client, server = RtmpConnection(Role.CLIENT), RtmpConnection(Role.SERVER)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert client.handshake_complete and server.handshake_complete
    return client, server


def test_sending_before_the_handshake_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="handshake"):
        RtmpConnection(Role.CLIENT).send_command("connect", 1, {})


def test_commands_and_media_cross_in_both_directions() -> None:
    client, server = _connected_pair()
    client.send_set_chunk_size(4096)
    client.send_command("connect", 1, {"app": "live"})
    client.send_video(40, b"\x17\x01" + bytes(5000), stream_id=1)
    server.receive_data(client.data_to_send())
    events = server.events_received()
    assert events[0] == m.SetChunkSize(4096)
    assert events[1] == m.Command("connect", 1.0, {"app": "live"})
    assert events[2] == m.VideoMessage(40, 1, b"\x17\x01" + bytes(5000))
    assert server.in_chunk_size == 4096 and client.out_chunk_size == 4096
    server.send_command("onStatus", 0, None, {"code": "NetStream.Publish.Start"}, stream_id=1)
    client.receive_data(server.data_to_send())
    (status,) = client.events_received()
    assert isinstance(status, m.Command) and status.status_code == "NetStream.Publish.Start" and status.stream_id == 1


def test_receiver_acknowledges_each_window_with_the_bytes_it_received() -> None:
    client, server = _connected_pair()
    client.send_window_ack_size(1000)  # the client wants to hear from the server every 1000 bytes
    server.receive_data(client.data_to_send())
    server.events_received()
    acks: list[int] = []
    for _ in range(10):
        client.send_audio(0, bytes(450), stream_id=1)
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        acks += [e.sequence_number for e in client.events_received() if isinstance(e, m.Acknowledgement)]
    assert len(acks) >= 3
    assert all(later - earlier >= 1000 for earlier, later in itertools.pairwise(acks))
    assert server.bytes_received - acks[-1] < 1000
    assert acks[-1] == client.peer_acknowledged
    assert server.bytes_received == client.bytes_sent


def test_ping_requests_are_answered_with_the_same_timestamp() -> None:
    client, server = _connected_pair()
    server.send_user_control(m.PING_REQUEST, 123456)
    client.receive_data(server.data_to_send())
    assert client.events_received() == [m.UserControl(m.PING_REQUEST, 123456)]
    server.receive_data(client.data_to_send())
    assert server.events_received() == [m.UserControl(m.PING_RESPONSE, 123456)]


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=64), st.binary(max_size=64))
def test_any_message_type_with_any_body_decodes_or_raises_protocol_error_only(
    type_id: int, body: bytes, trailing: bytes
) -> None:
    _client, server = _connected_pair()
    wire = ChunkWriter().write(3, 0, type_id, 0, body) + trailing
    try:
        server.receive_data(wire)
    except ProtocolError:
        return
    assert all(isinstance(event, m.Event) for event in server.events_received())


def test_a_command_with_its_name_alone_is_read_with_transaction_id_0_as_ffmpegs_rtmp_server_sends_onfcpublish() -> None:
    from agent.rtmp.chunks import RawMessage

    raw = RawMessage(3, 0, m.COMMAND_AMF0, 0, b"\x02\x00\x0bonFCPublish")  # bytes FFmpeg 8's listen mode sent
    event = m.decode_message(raw)
    assert isinstance(event, m.Command) and (event.name, event.transaction_id) == ("onFCPublish", 0.0)
    with pytest.raises(ProtocolError, match="without a name"):
        m.decode_message(RawMessage(3, 0, m.COMMAND_AMF0, 0, b"\x00\x3f\xf0\x00\x00\x00\x00\x00\x00"))  # a number

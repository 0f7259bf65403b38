"""What a peer may make the RTMP core hold or compute, before and after it publishes: refused at the bound,
before the bytes are buffered or the values built."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.relay.publisher import (
    COMMAND_BYTES_BEFORE_PUBLISH,
    HELD_BYTES_BEFORE_PUBLISH,
    PublisherSession,
    PublishRequested,
)
from agent.rtmp import amf0
from agent.rtmp import messages as m
from agent.rtmp.chunk_writer import ChunkWriter
from agent.rtmp.chunks import ChunkReader, ReadLimits
from agent.rtmp.connection import Role, RtmpConnection

SMALL = ReadLimits(max_message_size=1 << 20, max_command_size=4096, max_pending_bytes=8192)


def _header(csid: int, length: int, type_id: int, stream_id: int = 1) -> bytes:
    return bytes([csid]) + bytes(3) + length.to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", stream_id)


def _set_chunk_size(size: int) -> bytes:
    return _header(2, 4, 1, 0) + struct.pack(">I", size)


def _reader(limits: ReadLimits = SMALL) -> ChunkReader:
    reader = ChunkReader()
    reader.set_limits(limits)
    return reader


def test_a_command_above_the_command_limit_is_refused_at_its_header() -> None:
    with pytest.raises(ProtocolError, match="type 20 and 4097 bytes"):
        _reader().receive_data(_header(3, 4097, m.COMMAND_AMF0, 0))


def test_a_media_message_may_be_larger_than_a_command() -> None:
    wire = ChunkWriter().write(6, 0, m.VIDEO, 1, bytes(6000))
    reader = _reader(ReadLimits(max_message_size=1 << 20, max_command_size=4096, max_pending_bytes=1 << 20))
    (message,) = reader.receive_data(wire)
    assert len(message.payload) == 6000


def test_one_unfinished_chunk_of_a_huge_chunk_size_counts_against_the_held_bound() -> None:
    reader = _reader()
    reader.receive_data(_set_chunk_size(0x7FFFFFFF) + _header(6, 1_000_000, m.VIDEO) + bytes(4000))
    assert reader.buffered_bytes < SMALL.max_pending_bytes
    with pytest.raises(ProtocolError, match="held in unfinished messages"):
        reader.receive_data(bytes(8000))


def test_unfinished_messages_on_many_chunk_streams_count_together() -> None:
    reader = _reader()
    reader.receive_data(_set_chunk_size(1024))
    with pytest.raises(ProtocolError, match="unfinished"):
        for csid in range(4, 60):
            reader.receive_data(_header(csid, 500_000, m.VIDEO) + bytes(1024))
    assert csid == 4 + SMALL.max_pending_bytes // 1024


def _connect_and_publish(client: RtmpConnection) -> bytes:
    client.send_set_chunk_size(4096)
    client.send_command("connect", 1, {"app": "live", "flashVer": "FMLE/3.0\r\nERROR forged \x1b[31mline\x1b[0m"})
    client.send_command("createStream", 2, None)
    client.send_command("publish", 3, None, "key", "live", stream_id=1)
    return client.data_to_send()


def _handshaken() -> tuple[PublisherSession, RtmpConnection]:
    session, client = PublisherSession(), RtmpConnection(Role.CLIENT)
    session.receive_data(client.data_to_send())
    client.receive_data(session.data_to_send())
    session.receive_data(client.data_to_send())
    return session, client


def test_before_publish_a_connection_holds_no_more_than_a_command_needs() -> None:
    session, _ = _handshaken()
    with pytest.raises(ProtocolError, match=f"exceeds the {COMMAND_BYTES_BEFORE_PUBLISH} byte limit"):
        session.receive_data(_header(3, 16 * 1024 * 1024 - 1, m.COMMAND_AMF0, 0))
    session, _ = _handshaken()
    session.receive_data(_set_chunk_size(4096))
    with pytest.raises(ProtocolError, match=f"more than {HELD_BYTES_BEFORE_PUBLISH} bytes"):
        for csid in range(4, 60):  # 16 MiB-1 keyframes begun on many chunk streams, never finished
            session.receive_data(_header(csid, 16 * 1024 * 1024 - 1, m.VIDEO) + bytes(4096))
    assert csid == 4 + HELD_BYTES_BEFORE_PUBLISH // 4096


def test_a_publishing_stream_gets_the_stream_limits_and_loses_them_when_it_stops() -> None:
    session, client = _handshaken()
    session.receive_data(_connect_and_publish(client))
    assert any(isinstance(e, PublishRequested) for e in session.events())
    session.accept_publish()
    client.send_video(0, b"\x17\x01" + bytes(3) + bytes(1_000_000), stream_id=1)  # a 1 MB keyframe
    session.receive_data(client.data_to_send())
    assert [len(e.payload) for e in session.events() if hasattr(e, "payload")][-1] == 1_000_005
    client.send_command("deleteStream", 4, None, 1.0)
    session.receive_data(client.data_to_send())
    session.events()
    client.send_video(0, b"\x17\x01" + bytes(3) + bytes(1_000_000), stream_id=1)
    wire = client.data_to_send()
    with pytest.raises(ProtocolError, match="unfinished"):
        for start in range(0, len(wire), 16 * 1024):  # as the relay reads before publish
            session.receive_data(wire[start : start + 16 * 1024])


def test_the_encoder_name_and_app_lose_their_control_characters() -> None:
    session, client = _handshaken()
    session.receive_data(_connect_and_publish(client))
    (request,) = [e for e in session.events() if isinstance(e, PublishRequested)]
    assert request.encoder == "FMLE/3.0  ERROR forged line"
    assert request.app == "live"


# ------------------------------------------------------------------------------------------------ AMF0


def test_an_amf0_strict_array_past_the_value_bound_is_refused_at_its_count() -> None:
    # The bomb: a connect holding a strict array of 4 M empty objects (16 MiB).
    bomb = amf0.encode("connect", 1.0) + b"\x0a" + (4_000_000).to_bytes(4, "big") + b"\x03\x00\x00\x09" * 4_000_000
    with pytest.raises(ProtocolError, match="4000000 elements"):
        amf0.decode_all(bomb)


def test_amf0_values_past_the_bound_are_refused_however_they_nest() -> None:
    nested = amf0.encode([{f"k{i}": None for i in range(50)} for _ in range(50)])  # 2,551 values in all
    with pytest.raises(ProtocolError, match=f"more than {amf0.MAX_VALUES} values"):
        amf0.decode_all(nested)
    assert len(amf0.decode_all(nested, max_values=3000)[0]) == 50
    arrays = amf0.encode([[None] * 50 for _ in range(50)])  # the count of an array that cannot fit
    with pytest.raises(ProtocolError, match=f"50 elements at byte \\d+ exceeds {amf0.MAX_VALUES} values"):
        amf0.decode_all(arrays)


def test_an_amf0_long_string_above_the_element_bound_is_refused() -> None:
    data = b"\x0c" + (amf0.MAX_STRING_BYTES + 1).to_bytes(4, "big") + bytes(amf0.MAX_STRING_BYTES + 1)
    with pytest.raises(ProtocolError, match="exceeds"):
        amf0.decode_all(data)


def test_an_amf0_bomb_inside_a_command_closes_the_connection_before_publish() -> None:
    session, client = _handshaken()
    client.send_set_chunk_size(65536)
    body = amf0.encode("connect", 1.0) + b"\x0a" + (16_000).to_bytes(4, "big") + b"\x03\x00\x00\x09" * 16_000
    with pytest.raises(ProtocolError, match="16000 elements"):
        client._send(3, 0, m.COMMAND_AMF0, 0, body)
        session.receive_data(client.data_to_send())


# ------------------------------------------------------------------------------------------------ fuzz

_TYPES = st.sampled_from([1, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 20, 22])
_AMF = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)


@st.composite
def _chunk_stream(draw: st.DrawFn) -> list[bytes]:
    """Mostly well-formed chunks (random headers, lengths around the bounds, AMF0 bodies, Set Chunk Size
    with any value, Aborts), some mangled, cut into random pieces."""
    wire = bytearray()
    for _ in range(draw(st.integers(1, 12))):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            wire += _set_chunk_size(draw(st.sampled_from([1, 128, 4096, 0x7FFFFFFF, 0, 0x80000000])))
        elif choice == 1:
            body = amf0.encode(draw(st.text(max_size=10)), 1.0, draw(_AMF))
            wire += ChunkWriter().write(draw(st.integers(3, 70)), 0, m.COMMAND_AMF0, 0, body)
        elif choice == 2:
            length = draw(st.sampled_from([0, 1, 4095, 4096, 65536, 65537, 131072, 1 << 20, (1 << 24) - 1]))
            wire += _header(draw(st.integers(2, 63)), length, draw(_TYPES)) + draw(st.binary(max_size=300))
        elif choice == 3:
            fmt = draw(st.integers(0, 3)) << 6
            wire += bytes([fmt | draw(st.integers(0, 63))]) + draw(st.binary(max_size=40))
        elif choice == 4:
            wire += _header(2, 4, 2, 0) + struct.pack(">I", draw(st.integers(0, 80)))
        else:
            body = draw(st.binary(max_size=200))
            wire += ChunkWriter().write(draw(st.integers(3, 63)), 0, draw(_TYPES), 1, body)
    if draw(st.booleans()) and wire:
        wire[draw(st.integers(0, len(wire) - 1))] = draw(st.integers(0, 255))
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    return [bytes(wire[a:b]) for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]


@settings(max_examples=400, deadline=None)
@given(_chunk_stream(), st.booleans())
def test_any_input_is_handled_within_the_bounds_or_fails_that_connection_only(
    pieces: list[bytes], publishing: bool
) -> None:
    session, client = _handshaken()
    other, other_client = _handshaken()  # a second connection, untouched by the first one's fate
    if publishing:
        session.receive_data(_connect_and_publish(client))
        session.events()
        session.accept_publish()
    limit = 2 * (16 * 1024 * 1024) if publishing else HELD_BYTES_BEFORE_PUBLISH
    reader = session.connection._reader
    with contextlib.suppress(ProtocolError):
        for piece in pieces:
            session.receive_data(piece)
            assert reader.buffered_bytes <= limit + len(piece)
            session.events()
    other.receive_data(_connect_and_publish(other_client))
    assert any(isinstance(e, PublishRequested) for e in other.events())


def test_many_small_commands_in_one_read_share_one_budget_of_amf0_values() -> None:
    session, client = _handshaken()
    client.send_set_chunk_size(65536)
    body = amf0.encode("connect", 1.0, [{} for _ in range(150)])  # each under the per-message bound
    for _ in range(3):
        client._send(3, 0, m.COMMAND_AMF0, 0, body)
    with pytest.raises(ProtocolError, match="values"):
        session.receive_data(client.data_to_send())
    session, client = _handshaken()
    client.send_set_chunk_size(65536)
    for _ in range(3):  # the same commands, one read each
        client._send(3, 0, m.COMMAND_AMF0, 0, body)
        session.receive_data(client.data_to_send())


def test_the_relay_forwards_data_messages_without_decoding_them() -> None:
    session, client = _handshaken()
    session.receive_data(_connect_and_publish(client))
    session.events()
    session.accept_publish()
    body = b"\x02\x00\x0aonTextData" + b"\x0a" + (4_000).to_bytes(4, "big") + b"\x03\x00\x00\x09" * 4_000
    client._send(5, 0, m.DATA_AMF0, 1, body)
    session.receive_data(client.data_to_send())
    (frame,) = [e for e in session.events() if getattr(e, "payload", None) == body]
    assert frame.type_id == m.DATA_AMF0

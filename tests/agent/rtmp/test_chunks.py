"""Chunk stream: what the writer writes the reader reads back, whatever the chunk size, chunk stream ids and
timestamps; Set Chunk Size, Abort, extended timestamps on continuations, and bounds on what a peer can make us hold."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.rtmp.chunk_writer import ChunkWriter
from agent.rtmp.chunks import ChunkReader, RawMessage

message_strategy = st.builds(
    lambda csid, stream_id, type_id, payload, step: (csid, stream_id, type_id, payload, step),
    st.sampled_from([2, 3, 4, 63, 64, 65, 319, 320, 1000, 65599]),
    st.sampled_from([0, 1, 7]),
    st.sampled_from([8, 9, 18, 20]),
    st.binary(max_size=700),
    st.sampled_from([0, 0, 1, 33, 0xFFFFFE, 0xFFFFFF, 0x1000000, 0x7FFFFFFF]),
)


def _feed_in_pieces(reader: ChunkReader, data: bytes, cuts: list[int]) -> list[RawMessage]:
    messages: list[RawMessage] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        messages += reader.receive_data(data[start:cut])
        start = cut
    return messages


@settings(max_examples=200, deadline=None)
@given(
    st.lists(message_strategy, min_size=1, max_size=12),
    st.sampled_from([1, 2, 7, 128, 300, 4096, 65536]),
    st.lists(st.integers(min_value=0), max_size=8),
)
def test_reader_reads_back_exactly_what_writer_wrote(
    specs: list[tuple[int, int, int, bytes, int]], chunk_size: int, cuts: list[int]
) -> None:
    writer = ChunkWriter()
    reader = ChunkReader()
    wire = bytearray()
    expected: list[RawMessage] = []
    if chunk_size != 128:
        wire += writer.set_chunk_size_message(chunk_size)
        expected.append(RawMessage(2, 0, 1, 0, struct.pack(">I", chunk_size)))
    clocks: dict[int, int] = {}
    for csid, stream_id, type_id, payload, step in specs:
        timestamp = (clocks.get(csid, 0) + step) & 0xFFFFFFFF
        clocks[csid] = timestamp
        wire += writer.write(csid, timestamp, type_id, stream_id, payload)
        expected.append(RawMessage(csid, timestamp, type_id, stream_id, payload))
    assert _feed_in_pieces(reader, bytes(wire), cuts) == expected
    assert reader.buffered_bytes == 0


def test_interleaved_chunks_of_two_streams_reassemble_into_their_messages() -> None:
    writer = ChunkWriter(chunk_size=128)
    audio = writer.write(4, 10, 8, 1, b"a" * 300)
    video = writer.write(6, 10, 9, 1, b"v" * 200)
    # Hand-interleave: chunks of audio and video alternate, as ingests and encoders do.
    audio_chunks = [audio[:140], audio[140:269], audio[269:]]
    video_chunks = [video[:140], video[140:]]
    wire = audio_chunks[0] + video_chunks[0] + audio_chunks[1] + video_chunks[1] + audio_chunks[2]
    messages = ChunkReader().receive_data(wire)
    assert [(msg.csid, msg.payload) for msg in messages] == [(6, b"v" * 200), (4, b"a" * 300)]


def test_extended_timestamp_is_repeated_on_continuation_chunks_and_read_back() -> None:
    writer = ChunkWriter(chunk_size=128)
    wire = writer.write(6, 0x01000000, 9, 1, bytes(300))
    assert wire[1:4] == b"\xff\xff\xff"
    continuation = wire[12 + 4 + 128 :]
    assert continuation[:5] == b"\xc6\x01\x00\x00\x00"  # fmt 3, csid 6, then the extended timestamp again
    (message,) = ChunkReader().receive_data(wire)
    assert message.timestamp == 0x01000000 and message.payload == bytes(300)


def test_continuation_chunks_without_the_extended_timestamp_are_also_understood() -> None:
    header = b"\x06" + b"\xff\xff\xff" + (200).to_bytes(3, "big") + b"\x09" + b"\x01\x00\x00\x00" + b"\x01\x00\x00\x00"
    wire = header + b"x" * 128 + b"\xc6" + b"y" * 72  # an encoder that omits it on fmt 3
    (message,) = ChunkReader().receive_data(wire)
    assert message.payload == b"x" * 128 + b"y" * 72 and message.timestamp == 0x01000000


def test_set_chunk_size_applies_to_the_chunks_after_it() -> None:
    writer = ChunkWriter()
    wire = writer.set_chunk_size_message(4096) + writer.write(3, 0, 20, 0, b"z" * 3000)
    assert wire.count(b"\xc3") == 0  # one chunk: no continuation headers
    messages = ChunkReader().receive_data(wire)
    assert messages[-1].payload == b"z" * 3000


def test_abort_discards_the_partial_message_of_that_chunk_stream() -> None:
    writer = ChunkWriter()
    first = writer.write(6, 0, 9, 1, b"a" * 200)
    abort = ChunkWriter().write(2, 0, 2, 0, struct.pack(">I", 6))
    second = ChunkWriter().write(6, 5, 9, 1, b"b" * 10)
    reader = ChunkReader()
    messages = reader.receive_data(first[:140] + abort + second)
    assert [msg.type_id for msg in messages] == [2, 9]
    assert messages[1].payload == b"b" * 10
    assert reader.buffered_bytes == 0


def test_a_message_above_the_size_limit_is_refused_before_it_is_buffered() -> None:
    reader = ChunkReader(max_message_size=1000)
    header = b"\x06" + bytes(3) + (1001).to_bytes(3, "big") + b"\x09" + bytes(4)
    with pytest.raises(ProtocolError, match="exceeds"):
        reader.receive_data(header)
    with pytest.raises(ProtocolError):  # the reader stays failed
        reader.receive_data(b"")


def test_unfinished_messages_across_many_chunk_streams_are_bounded() -> None:
    reader = ChunkReader(max_message_size=100_000, max_pending_bytes=5_000)
    with pytest.raises(ProtocolError, match="unfinished"):
        for csid in range(3, 63):
            header = bytes([csid]) + bytes(3) + (100_000).to_bytes(3, "big") + b"\x09" + bytes(4)
            reader.receive_data(header + bytes(128))


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\xc5" + bytes(10), "starts with a type 3 header"),
        (b"\x45" + bytes(10), "starts with a type 1 header"),
        (b"\x02" + bytes(3) + b"\x00\x00\x04\x01" + bytes(4) + b"\x00\x00\x00\x00", "invalid chunk size 0"),
        (b"\x02" + bytes(3) + b"\x00\x00\x04\x01" + bytes(4) + b"\x80\x00\x00\x01", "invalid chunk size"),
    ],
)
def test_malformed_chunk_streams_raise_protocol_error(wire: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        ChunkReader().receive_data(wire)


def test_a_new_message_header_in_the_middle_of_a_message_is_a_protocol_error() -> None:
    wire = ChunkWriter().write(6, 0, 9, 1, bytes(200))[:140]
    with pytest.raises(ProtocolError, match="middle of a message"):
        ChunkReader().receive_data(wire + b"\x06" + bytes(11))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_ever_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        ChunkReader(max_message_size=4096).receive_data(data)


def _receive_whole(reader: ChunkReader, data: bytes) -> list[RawMessage]:
    whole, rest = reader.receive_whole(memoryview(data))
    return [RawMessage(csid, ts, type_id, stream_id, payload) for csid, type_id, stream_id, ts, payload in whole] + rest


# Mostly what the short pass takes (audio and video on a few chunk streams, repeated steps so headers
# shrink to type 2 and 3), with some of what it must leave alone.
media_strategy = st.builds(
    lambda csid, stream_id, type_id, payload, step: (csid, stream_id, type_id, payload, step),
    st.sampled_from([4, 6, 6, 63, 64]),
    st.sampled_from([1, 1, 0]),
    st.sampled_from([8, 9, 9, 18]),
    st.sampled_from([5, 5, 5, 0, 300]).flatmap(lambda size: st.binary(min_size=size, max_size=size)),
    st.sampled_from([0, 21, 33, 33, 33, 0xFFFFFF, 0x1000000]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(media_strategy, min_size=1, max_size=16),
    st.sampled_from([1, 7, 128, 4096, 65536]),
    st.lists(st.integers(min_value=0), max_size=6),
    st.lists(st.booleans(), min_size=16, max_size=16),
)
def test_the_short_pass_reads_what_the_general_one_reads(
    specs: list[tuple[int, int, int, bytes, int]], chunk_size: int, cuts: list[int], together: list[bool]
) -> None:
    """`receive_whole` (the relay's fast lane) gives the same messages in the same order as `receive_data`,
    and leaves the reader in the same state, whether reads end on message boundaries (as an encoder's
    usually do, which the short pass takes) or anywhere: a wrong timestamp or chunk stream state there would
    corrupt every later frame."""
    writer = ChunkWriter()
    setup = bytearray(writer.set_chunk_size_message(chunk_size))
    messages: list[bytes] = []
    clocks: dict[int, int] = {}
    for csid, stream_id, type_id, payload, step in specs:
        clocks[csid] = (clocks.get(csid, 0) + step) & 0xFFFFFFFF
        messages.append(writer.write(csid, clocks[csid], type_id, stream_id, payload))
    # Reads: one or more whole messages each (`together` joins a message to the one before), then the
    # random cuts on top.
    reads: list[bytes] = [bytes(setup)]
    for index, message in enumerate(messages):
        if together[index] and index:
            reads[-1] += message
        else:
            reads.append(message)
    general, short = ChunkReader(), ChunkReader()
    for read in reads:
        start = 0
        for cut in [*sorted({c % (len(read) + 1) for c in cuts if c % 3 == 0}), len(read)]:
            assert _receive_whole(short, read[start:cut]) == general.receive_data(read[start:cut])
            start = cut
    assert short.buffered_bytes == general.buffered_bytes == 0
    # The same state: one more message with the smallest header reads back the same on both.
    csid, stream_id, type_id = specs[-1][0], specs[-1][1], specs[-1][2]
    again = writer.write(csid, clocks[csid] + 40, type_id, stream_id, b"next")
    assert _receive_whole(short, again) == general.receive_data(again)


def test_the_short_pass_takes_the_common_case_itself() -> None:
    """Not only correct but used: a read of whole audio and video messages is read in the short pass."""
    writer = ChunkWriter(chunk_size=4096)
    reader = ChunkReader()
    setup = writer.set_chunk_size_message(4096) + writer.write(6, 0, 9, 1, bytes(10)) + writer.write(4, 0, 8, 1, b"a")
    reader.receive_data(setup)
    read = writer.write(6, 33, 9, 1, bytes(10_000)) + writer.write(4, 21, 8, 1, b"aa")  # fmt 1/2, continuations
    whole, rest = reader.receive_whole(memoryview(read))
    assert [(m[0], m[1], m[3], len(m[4])) for m in whole] == [(6, 9, 33, 10_000), (4, 8, 21, 2)]
    assert rest == []

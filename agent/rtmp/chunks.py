"""The RTMP chunk stream, without I/O: the reader, which reassembles messages (the writer is `chunk_writer.py`).

The reader takes bytes as they arrive and returns whole messages; a chunk that is only partly there is
left in the buffer untouched until the rest arrives, so cutting the input anywhere gives the same
messages. It honours Set Chunk Size and Abort itself (they change how the following bytes parse) and
bounds what a peer can make us hold, whatever chunk size it announces: an audio or video message above
`max_message_size`, any other message (commands, data, control) above `max_command_size`, or more than
`max_pending_bytes` held (unfinished messages across chunk streams plus an incomplete chunk) is a
`ProtocolError`. The bounds can change between reads (`set_limits`: the relay raises them once a stream
publishes).
Everything else about messages (commands, acks, media) lives in `messages.py`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from agent.errors import ProtocolError

DEFAULT_CHUNK_SIZE: Final = 128  # until a Set Chunk Size says otherwise, in each direction
MAX_CHUNK_SIZE: Final = 0x7FFFFFFF  # the 31 bits Set Chunk Size may carry
DEFAULT_MAX_MESSAGE_SIZE: Final = 8 * 1024 * 1024  # a 4K keyframe fits; the 24-bit field allows 16 MiB
EXTENDED_TIMESTAMP: Final = 0xFFFFFF

# Protocol control message type ids (the reader acts on the first two itself).
TYPE_SET_CHUNK_SIZE: Final = 1
TYPE_ABORT: Final = 2
TYPE_AUDIO: Final = 8
TYPE_VIDEO: Final = 9

_U32 = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
_HEADER_SIZES: Final = (11, 7, 3, 0)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One reassembled message: which chunk stream carried it, its absolute timestamp (ms, 32-bit), type,
    message stream id and body."""

    csid: int
    timestamp: int
    type_id: int
    stream_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What a peer may make the reader hold: audio/video messages up to `max_message_size` bytes, any
    other message up to `max_command_size`, and `max_pending_bytes` of unfinished messages and incomplete
    chunk in all."""

    max_message_size: int
    max_command_size: int
    max_pending_bytes: int


# A media message read whole by `ChunkReader.receive_whole`: (chunk stream id, type id, message stream id,
# timestamp in ms, payload): what a `RawMessage` holds, without building one.
WholeMessage = tuple[int, int, int, int, bytes]


class _InStream:
    """What the reader remembers per chunk stream id: the last header, and the message being assembled."""

    __slots__ = ("delta", "extended", "length", "partial", "remaining", "stream_id", "timestamp", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False  # the last fmt 0-2 header used the extended timestamp field
        self.remaining = 0  # bytes of the current message still to come; 0 between messages
        self.partial = bytearray()


class ChunkReader:
    """Bytes in, `RawMessage`s out. Raises `ProtocolError` (and only that) on malformed input; after one,
    the reader is unusable and the connection should be dropped."""

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_pending_bytes: int | None = None,
        max_command_size: int | None = None,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_pending_bytes = max_pending_bytes if max_pending_bytes is not None else 2 * max_message_size
        self.max_command_size = max_command_size if max_command_size is not None else max_message_size
        self._buffer = bytearray()
        self._streams: dict[int, _InStream] = {}
        self._pending_bytes = 0
        self._failed: ProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held: an incomplete chunk plus unfinished messages (what the bounds limit)."""
        return len(self._buffer) + self._pending_bytes

    def set_limits(self, limits: ReadLimits) -> None:
        """New bounds for what follows (what is already held is checked against them at the next read)."""
        self.max_message_size = limits.max_message_size
        self.max_command_size = limits.max_command_size
        self.max_pending_bytes = limits.max_pending_bytes

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[RawMessage]:
        if self._failed is not None:
            raise self._failed
        try:
            if self._buffer:
                self._buffer += data
                messages = self._parse()
            else:
                # Nothing held from before (the usual case: reads end on chunk boundaries): parse the new
                # bytes where they are, and keep only what is left of them.
                with memoryview(data) as view:
                    messages, pos = self._parse_chunks(data, view)
                    if pos < len(view):
                        self._buffer += view[pos:]
            if self._buffer and len(self._buffer) + self._pending_bytes > self.max_pending_bytes:
                # An incomplete chunk counts too: with a huge chunk size, a message is one chunk that
                # would otherwise sit in the buffer unbounded until it is whole.
                raise self._fail(f"more than {self.max_pending_bytes} bytes held in unfinished messages")
            return messages
        except ProtocolError as exc:
            self._failed = exc
            raise

    def receive_whole(self, data: memoryview) -> tuple[list[WholeMessage], list[RawMessage]]:
        """`receive_data` for the steady state of a stream, in one short pass: (the leading messages that
        came whole, each in one chunk or followed at once by its continuation chunks, with an ordinary
        timestamp and nothing held from before, as `WholeMessage` tuples), then
        `receive_data`'s answer for the rest of the bytes, if any. The chunk stream state ends as
        `receive_data` alone would leave it. The short pass takes audio and video only: anything else ends it."""
        if self._buffer or self._pending_bytes or self._failed is not None:
            return [], self.receive_data(data)
        size = len(data)
        pos = 0
        whole: list[WholeMessage] = []
        streams = self._streams
        chunk_size = self.chunk_size
        while pos < size:
            first = data[pos]
            fmt = first >> 6
            state = streams.get(first & 0x3F)
            p = pos + 1 + _HEADER_SIZES[fmt]
            if state is None or state.remaining or p > size:
                break  # a new chunk stream, a message in the middle, an id above 63 or a cut header
            if fmt == 3:
                if state.extended:
                    break
                delta, length, type_id, stream_id = state.delta, state.length, state.type_id, state.stream_id
            else:
                delta = (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]
                if delta == EXTENDED_TIMESTAMP:
                    break
                length, type_id, stream_id = state.length, state.type_id, state.stream_id
                if fmt <= 1:
                    length = (data[pos + 4] << 16) | (data[pos + 5] << 8) | data[pos + 6]
                    type_id = data[pos + 7]
                    if fmt == 0:
                        stream_id = _U32_LE.unpack_from(data, pos + 8)[0]
            if (type_id != TYPE_AUDIO and type_id != TYPE_VIDEO) or length > self.max_message_size:
                break
            end = p + (length if length < chunk_size else chunk_size)
            if end > size:
                break
            if end - p == length:
                payload = bytes(data[p:end])
            else:
                gathered = _gather_continuations(data, data, p, end, length, chunk_size, 0xC0 | (first & 0x3F))
                if gathered is None:
                    break
                end, payload = gathered
            timestamp = delta if fmt == 0 else (state.timestamp + delta) & 0xFFFFFFFF
            state.timestamp = timestamp
            if fmt != 3:
                state.delta, state.extended = delta, False
            state.length, state.type_id, state.stream_id = length, type_id, stream_id
            whole.append((first & 0x3F, type_id, stream_id, timestamp, payload))
            pos = end
        return whole, (self.receive_data(data[pos:]) if pos < size else [])

    def _fail(self, message: str) -> ProtocolError:
        return ProtocolError(f"RTMP chunk stream: {message}")

    def _parse(self) -> list[RawMessage]:
        buf = self._buffer
        with memoryview(buf) as view:  # payloads leave the buffer in one copy; released before it shrinks
            messages, pos = self._parse_chunks(buf, view)
        if pos:
            del buf[:pos]
        return messages

    def _parse_chunks(self, buf: bytes | bytearray | memoryview, view: memoryview) -> tuple[list[RawMessage], int]:
        """The whole chunks in `buf`, as messages; and how many bytes they took."""
        size = len(buf)
        pos = 0
        messages: list[RawMessage] = []
        streams = self._streams
        chunk_size = self.chunk_size
        while pos < size:
            first = buf[pos]
            fmt = first >> 6
            csid = first & 0x3F
            p = pos + 1
            if csid == 0:
                if p + 1 > size:
                    break
                csid = 64 + buf[p]
                p += 1
            elif csid == 1:
                if p + 2 > size:
                    break
                csid = 64 + buf[p] + (buf[p + 1] << 8)
                p += 2
            header_size = _HEADER_SIZES[fmt]
            if p + header_size > size:
                break
            state = streams.get(csid)
            if state is None:
                if fmt != 0:
                    raise self._fail(f"chunk stream {csid} starts with a type {fmt} header, not type 0")
                state = streams[csid] = _InStream()
            continuing = state.remaining > 0
            if fmt == 3:
                extended = state.extended
                ts_field = state.delta
                length, type_id, stream_id = state.length, state.type_id, state.stream_id
            else:
                if continuing:
                    raise self._fail(f"type {fmt} header on chunk stream {csid} in the middle of a message")
                ts_field = _U32.unpack_from(buf, p - 1)[0] & 0xFFFFFF
                length, type_id, stream_id = state.length, state.type_id, state.stream_id
                if fmt <= 1:
                    length = _U32.unpack_from(buf, p + 2)[0] & 0xFFFFFF
                    type_id = buf[p + 6]
                    if fmt == 0:
                        stream_id = _U32_LE.unpack_from(buf, p + 7)[0]
                extended = ts_field == EXTENDED_TIMESTAMP
            p += header_size
            if extended:
                if p + 4 > size:
                    break
                value = _U32.unpack_from(buf, p)[0]
                if fmt != 3:
                    ts_field = value
                    p += 4
                elif not continuing or value == state.delta:
                    # Continuation chunks should repeat the extended timestamp; some encoders omit it,
                    # which shows as the 4 bytes not matching. Then they are payload.
                    p += 4
            if not continuing:
                limit = self.max_message_size if type_id in (TYPE_AUDIO, TYPE_VIDEO) else self.max_command_size
                if length > limit:
                    raise self._fail(
                        f"message of type {type_id} and {length} bytes on chunk stream {csid} exceeds "
                        f"the {limit} byte limit"
                    )
                remaining = length
            else:
                remaining = state.remaining
            take = remaining if remaining < chunk_size else chunk_size
            end = p + take
            if end > size:
                break
            # The whole chunk is here: commit.
            if not continuing:
                state.timestamp = ts_field if fmt == 0 else (state.timestamp + ts_field) & 0xFFFFFFFF
                state.delta = ts_field
                state.length, state.type_id, state.stream_id = length, type_id, stream_id
                if fmt != 3:
                    state.extended = extended
            pos = end
            if take == length and not continuing:
                payload = bytes(view[p:end])
            elif (
                not continuing
                and not extended
                and csid < 64
                and (whole := _gather_continuations(buf, view, p, end, length, chunk_size, 0xC0 | csid))
            ):
                # The common case: the rest of the message follows at once in type 3 chunks of this chunk
                # stream. Taken in one step and one copy, instead of one pass of this loop per chunk.
                pos, payload = whole
            else:
                state.partial += view[p:end]
                self._pending_bytes += take
                if self._pending_bytes > self.max_pending_bytes:
                    raise self._fail(f"more than {self.max_pending_bytes} bytes of unfinished messages")
                remaining -= take
                state.remaining = remaining
                if remaining:
                    continue
                payload = bytes(state.partial)
                self._pending_bytes -= len(payload)
                state.partial = bytearray()
            state.remaining = 0
            message = RawMessage(csid, state.timestamp, type_id, stream_id, payload)
            messages.append(message)
            if type_id == TYPE_SET_CHUNK_SIZE:
                self.chunk_size = chunk_size = _parse_chunk_size(payload)
            elif type_id == TYPE_ABORT:
                self._abort(payload)
        return messages, pos

    def _abort(self, payload: bytes) -> None:
        if len(payload) < 4:
            raise self._fail("Abort message shorter than 4 bytes")
        state = self._streams.get(_U32.unpack_from(payload)[0])
        if state is not None and state.remaining:
            self._pending_bytes -= len(state.partial)
            state.partial = bytearray()
            state.remaining = 0


def _gather_continuations(
    buf: bytes | bytearray | memoryview,
    view: memoryview,
    start: int,
    end: int,
    length: int,
    chunk_size: int,
    marker: int,
) -> tuple[int, bytes] | None:
    """A message whose first chunk is `buf[start:end]`, if all its continuation chunks follow right after,
    each behind the one-byte type 3 header `marker`: (where it ends, its payload). None if another chunk
    stream's chunk comes between, or the message is not all here yet (the caller then goes chunk by chunk)."""
    size = len(buf)
    pieces = [view[start:end]]
    left = length - (end - start)
    while left > 0:
        step = left if left < chunk_size else chunk_size
        if end + 1 + step > size or buf[end] != marker:
            return None
        pieces.append(view[end + 1 : end + 1 + step])
        end += 1 + step
        left -= step
    return end, b"".join(pieces)


def _parse_chunk_size(payload: bytes) -> int:
    if len(payload) < 4:
        raise ProtocolError("RTMP chunk stream: Set Chunk Size message shorter than 4 bytes")
    value: int = _U32.unpack_from(payload)[0]
    if value & 0x80000000 or value == 0:
        raise ProtocolError(f"RTMP chunk stream: invalid chunk size {value}")
    return value

"""The RTMP chunk stream's writer, without I/O: messages in, chunk bytes out (the reader is `chunks.py`).

Each message gets the smallest header the previous one on its chunk stream allows (types 1-3 repeat what
is unchanged), as librtmp and nginx-rtmp write them; a relayed frame's payload is never copied here.
"""

from __future__ import annotations

import struct
from typing import Final

from agent.rtmp.chunks import DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CHUNK_SIZE, TYPE_SET_CHUNK_SIZE

_U32 = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
_U64 = struct.Struct(">Q")
_ONE_BYTE: Final = [bytes([value]) for value in range(256)]


def _basic_header(fmt: int, csid: int) -> bytes:
    if 2 <= csid <= 63:
        return bytes([(fmt << 6) | csid])
    if 64 <= csid <= 319:
        return bytes([fmt << 6, csid - 64])
    if 320 <= csid <= 65599:
        rest = csid - 64
        return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])
    raise ValueError(f"chunk stream id {csid} outside 2..65599")


class _OutStream:
    __slots__ = ("delta", "length", "stream_id", "timestamp", "type_id")

    def __init__(self, timestamp: int, delta: int, length: int, type_id: int, stream_id: int) -> None:
        self.timestamp = timestamp
        self.delta = delta
        self.length = length
        self.type_id = type_id
        self.stream_id = stream_id


class ChunkWriter:
    """Messages in, chunk bytes out, with the smallest header the previous one on that chunk stream allows."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size
        self._streams: dict[int, _OutStream] = {}

    def write(self, csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes | bytearray) -> bytes:
        pieces: list[bytes | memoryview] = []
        self.write_into(pieces, csid, timestamp, type_id, stream_id, payload)
        return b"".join(pieces)

    def write_into(
        self,
        pieces: list[bytes | memoryview],
        csid: int,
        timestamp: int,
        type_id: int,
        stream_id: int,
        payload: bytes | bytearray,
    ) -> int:
        """Append the message's chunks to `pieces` (headers, and views of the payload: nothing is copied);
        returns how many bytes they add up to. A bytearray payload is copied once, since views of it would
        change with it."""
        if isinstance(payload, bytearray):
            payload = bytes(payload)
        timestamp &= 0xFFFFFFFF
        length = len(payload)
        if length > 0xFFFFFF:
            raise ValueError(f"RTMP messages are limited to 16 MiB, got {length} bytes")
        previous = self._streams.get(csid)
        delta = 0
        fmt = 0
        if previous is not None and previous.stream_id == stream_id:
            delta = (timestamp - previous.timestamp) & 0xFFFFFFFF
            if delta <= 0x7FFFFFFF:  # forwards in time: a delta header works
                if previous.length != length or previous.type_id != type_id:
                    fmt = 1
                elif delta != previous.delta:
                    fmt = 2
                else:
                    fmt = 3
        ts_field = timestamp if fmt == 0 else delta
        if fmt == 3:
            ts_field = previous.delta if previous is not None else 0
        extended = ts_field >= EXTENDED_TIMESTAMP
        three = EXTENDED_TIMESTAMP if extended else ts_field
        if 2 <= csid <= 63:
            # One-byte basic header (every chunk stream we send on): the message header packs into one
            # integer, as fmt 0/1 are 1+3+3+1 bytes (+ the little-endian stream id) and fmt 2 is 1+3.
            first = (fmt << 6) | csid
            if fmt <= 1:
                header = _U64.pack(first << 56 | three << 32 | length << 8 | type_id)
                if fmt == 0:
                    header += _U32_LE.pack(stream_id)
            elif fmt == 2:
                header = _U32.pack(first << 24 | three)
            else:
                header = _ONE_BYTE[first]
        else:
            built = bytearray(_basic_header(fmt, csid))
            if fmt <= 2:
                built += three.to_bytes(3, "big")
                if fmt <= 1:
                    built += length.to_bytes(3, "big")
                    built.append(type_id)
                    if fmt == 0:
                        built += _U32_LE.pack(stream_id)
            header = bytes(built)
        extension = _U32.pack(ts_field) if extended else b""
        if extension:
            header += extension
        if previous is None:
            self._streams[csid] = _OutStream(timestamp, ts_field, length, type_id, stream_id)
        else:
            previous.timestamp, previous.delta, previous.length = timestamp, ts_field, length
            previous.type_id, previous.stream_id = type_id, stream_id

        chunk_size = self.chunk_size
        pieces.append(header)
        if length <= chunk_size:
            pieces.append(payload)
            return len(header) + length
        continuation = _basic_header(3, csid) + extension
        view = memoryview(payload)
        pieces.append(view[:chunk_size])
        count = 0
        for start in range(chunk_size, length, chunk_size):
            pieces.append(continuation)
            pieces.append(view[start : start + chunk_size])
            count += 1
        return len(header) + length + count * len(continuation)

    def set_chunk_size_message(self, chunk_size: int) -> bytes:
        """The Set Chunk Size message announcing `chunk_size`; from the next message on, chunks use it."""
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {chunk_size} outside 1..{MAX_CHUNK_SIZE}")
        data = self.write(2, 0, TYPE_SET_CHUNK_SIZE, 0, _U32.pack(chunk_size))
        self.chunk_size = chunk_size
        return data

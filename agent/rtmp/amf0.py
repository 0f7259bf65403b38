"""AMF0, the value encoding of RTMP commands and metadata: encode Python values, decode peer bytes.

Decoding never trusts the peer: any malformed input (truncation, unknown markers, absurd nesting)
raises `agent.errors.ProtocolError` and nothing else, and so does input past the bounds that keep one
message's decoding to a few milliseconds of the event loop (`MAX_VALUES` values, `MAX_DEPTH` levels,
strings of `MAX_STRING_BYTES`): a `connect` holding a strict array of 4 M empty objects is refused at its
count, before any of them is built. Not a general AMF library: AMF3, references and
typed objects are rejected, as no RTMP publisher or ingest we talk to sends them.

Python mapping: float/int <-> number, bool <-> boolean, str <-> string / long string, None <-> null,
`UNDEFINED` <-> undefined, dict <-> object, `EcmaArray` <-> ECMA array, list <-> strict array,
`Date` <-> date.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from agent.errors import ProtocolError

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C

# Deep enough for any real command, shallow enough that a hostile peer cannot exhaust the stack.
MAX_DEPTH: Final = 32
# Values in one message (each property, array element and nested object counts): a connect or onMetaData
# holds a few dozen. 2048 empty objects decode in about 2 ms here; a message past it is refused, not decoded.
MAX_VALUES: Final = 2048
# One string's bytes: metadata and descriptions are short; a peer's long string is refused above this.
MAX_STRING_BYTES: Final = 1024 * 1024

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE_TAIL = struct.Struct(">dh")


class _Undefined:
    """The AMF0 `undefined` value, distinct from `null` (None)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = _Undefined()


class EcmaArray(dict[str, Any]):
    """An associative array (marker 0x08): what onMetaData carries. Compares equal to a dict with the same items."""


@dataclass(frozen=True)
class Date:
    """An AMF0 date: milliseconds since the Unix epoch, and a time-zone field (reserved, normally 0)."""

    epoch_ms: float
    timezone_min: int = 0


# ---------------------------------------------------------------------------------------------- encoding


def encode(*values: Any) -> bytes:
    """Encode each value in turn, concatenated (an RTMP command is a sequence of AMF0 values)."""
    out = bytearray()
    for value in values:
        _encode_value(out, value, 0)
    return bytes(out)


def _encode_key(out: bytearray, key: str) -> None:
    raw = key.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("AMF0 property names are limited to 65535 bytes")
    out += _U16.pack(len(raw))
    out += raw


def _encode_properties(out: bytearray, items: dict[str, Any], depth: int) -> None:
    for key, item in items.items():
        if not isinstance(key, str):
            raise TypeError(f"AMF0 property names must be str, not {type(key).__name__}")
        _encode_key(out, key)
        _encode_value(out, item, depth + 1)
    out += b"\x00\x00\x09"


def _encode_value(out: bytearray, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"AMF0 values nest at most {MAX_DEPTH} levels")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode()
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw))
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _encode_properties(out, value, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(out, value, depth)
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_value(out, item, depth + 1)
    elif isinstance(value, Date):
        out.append(DATE)
        out += _DATE_TAIL.pack(value.epoch_ms, value.timezone_min)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


# ---------------------------------------------------------------------------------------------- decoding


class ValueBudget:
    """Values several messages may still build together (a connection's messages from one read: many
    small commands in one read must not add up to a long hold of the event loop either)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def decode_all(
    data: bytes | bytearray | memoryview, *, max_values: int = MAX_VALUES, budget: ValueBudget | None = None
) -> list[Any]:
    """Decode every value in `data` (a whole command or data message body), at most `max_values` in all,
    and at most what `budget` has left (which this spends)."""
    limit = max_values if budget is None else min(max_values, budget.left)
    decoder = _Decoder(memoryview(data), limit)
    values: list[Any] = []
    offset = 0
    try:
        while offset < len(decoder.view):
            value, offset = decoder.value(offset, 0)
            values.append(value)
    finally:
        if budget is not None:
            budget.left -= limit - decoder.left
    return values


def decode(data: bytes | bytearray | memoryview, offset: int = 0, *, max_values: int = MAX_VALUES) -> tuple[Any, int]:
    """Decode one value at `offset`; return it and the offset just past it."""
    return _Decoder(memoryview(data), max_values).value(offset, 0)


def _need(view: memoryview, offset: int, size: int, what: str) -> None:
    if offset + size > len(view):
        raise ProtocolError(f"AMF0 {what} truncated at byte {offset}")


class _Decoder:
    """One message's decoding: the bytes, and how many more values the bound lets it build."""

    __slots__ = ("left", "max_values", "view")

    def __init__(self, view: memoryview, max_values: int) -> None:
        self.view = view
        self.max_values = max_values
        self.left = max_values

    def _spend(self, count: int, offset: int) -> None:
        self.left -= count
        if self.left < 0:
            raise ProtocolError(f"AMF0 message holds more than {self.max_values} values (at byte {offset})")

    def string(self, offset: int, length_size: int) -> tuple[str, int]:
        view = self.view
        _need(view, offset, length_size, "string length")
        length = _U16.unpack_from(view, offset)[0] if length_size == 2 else _U32.unpack_from(view, offset)[0]
        if length > MAX_STRING_BYTES:
            raise ProtocolError(f"AMF0 string of {length} bytes at byte {offset} exceeds {MAX_STRING_BYTES}")
        offset += length_size
        _need(view, offset, length, "string")
        # Real peers occasionally send Latin-1 descriptions: keep going rather than drop the connection.
        return bytes(view[offset : offset + length]).decode("utf-8", errors="replace"), offset + length

    def properties(self, offset: int, depth: int, into: dict[str, Any]) -> int:
        view = self.view
        while True:
            key, offset = self.string(offset, 2)
            _need(view, offset, 1, "property marker")
            if not key and view[offset] == OBJECT_END:
                return offset + 1
            into[key], offset = self.value(offset, depth + 1)

    def value(self, offset: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise ProtocolError(f"AMF0 values nested deeper than {MAX_DEPTH} levels")
        view = self.view
        _need(view, offset, 1, "type marker")
        self._spend(1, offset)
        marker = view[offset]
        offset += 1
        if marker == NUMBER:
            _need(view, offset, 8, "number")
            return _DOUBLE.unpack_from(view, offset)[0], offset + 8
        if marker == BOOLEAN:
            _need(view, offset, 1, "boolean")
            return view[offset] != 0, offset + 1
        if marker == STRING:
            return self.string(offset, 2)
        if marker == LONG_STRING:
            return self.string(offset, 4)
        if marker == NULL:
            return None, offset
        if marker == UNDEFINED_MARKER:
            return UNDEFINED, offset
        if marker == OBJECT:
            obj: dict[str, Any] = {}
            return obj, self.properties(offset, depth, obj)
        if marker == ECMA_ARRAY:
            _need(view, offset, 4, "ECMA array count")
            # The count is advisory (encoders get it wrong); the object-end marker is what ends the array.
            array = EcmaArray()
            return array, self.properties(offset + 4, depth, array)
        if marker == STRICT_ARRAY:
            _need(view, offset, 4, "strict array count")
            count = _U32.unpack_from(view, offset)[0]
            offset += 4
            # Every element takes at least one byte, and counts against the bound: refuse a count that the
            # remaining bytes or values cannot hold before building any element.
            _need(view, offset, count, "strict array")
            if count > self.left:
                raise ProtocolError(
                    f"AMF0 strict array of {count} elements at byte {offset - 5} exceeds {self.max_values} values"
                )
            items: list[Any] = []
            for _ in range(count):
                item, offset = self.value(offset, depth + 1)
                items.append(item)
            return items, offset
        if marker == DATE:
            _need(view, offset, 10, "date")
            epoch_ms, timezone_min = _DATE_TAIL.unpack_from(view, offset)
            return Date(epoch_ms, timezone_min), offset + 10
        if marker == OBJECT_END:
            raise ProtocolError(f"AMF0 object-end marker outside an object at byte {offset - 1}")
        raise ProtocolError(f"unsupported AMF0 type marker 0x{marker:02x} at byte {offset - 1}")

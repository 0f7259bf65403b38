"""RTMP messages as typed events, and the bodies we send: protocol control, user control, commands, data, media.

`decode_message` turns a reassembled `RawMessage` into one of the event classes below; the `*_body`
functions build message bodies. No I/O and no session state here: `connection.py` keeps that.
Media bodies are kept as the bytes that arrived (FLV tag bodies), so a relay can forward them untouched.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Final

from agent.errors import ProtocolError
from agent.rtmp import amf0
from agent.rtmp.chunks import RawMessage

# Message type ids.
SET_CHUNK_SIZE: Final = 1
ABORT: Final = 2
ACKNOWLEDGEMENT: Final = 3
USER_CONTROL: Final = 4
WINDOW_ACK_SIZE: Final = 5
SET_PEER_BANDWIDTH: Final = 6
AUDIO: Final = 8
VIDEO: Final = 9
DATA_AMF3: Final = 15
COMMAND_AMF3: Final = 17
DATA_AMF0: Final = 18
COMMAND_AMF0: Final = 20
AGGREGATE: Final = 22

# User control event types.
STREAM_BEGIN: Final = 0
STREAM_EOF: Final = 1
STREAM_DRY: Final = 2
SET_BUFFER_LENGTH: Final = 3
STREAM_IS_RECORDED: Final = 4
PING_REQUEST: Final = 6
PING_RESPONSE: Final = 7

# Set Peer Bandwidth limit types.
LIMIT_HARD: Final = 0
LIMIT_SOFT: Final = 1
LIMIT_DYNAMIC: Final = 2

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class SetChunkSize:
    chunk_size: int


@dataclass(frozen=True, slots=True)
class Abort:
    csid: int


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The peer has received `sequence_number` bytes (modulo 2**32) of our chunk stream."""

    sequence_number: int


@dataclass(frozen=True, slots=True)
class WindowAckSize:
    """The peer wants an Acknowledgement every `size` bytes it sends us."""

    size: int


@dataclass(frozen=True, slots=True)
class SetPeerBandwidth:
    size: int
    limit_type: int


@dataclass(frozen=True, slots=True)
class UserControl:
    """`value` is the stream id (stream events) or the timestamp (pings); `buffer_ms` only for Set Buffer Length."""

    event_type: int
    value: int
    buffer_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """An AMF command: connect, createStream, publish, _result, _error, onStatus, ..."""

    name: str
    transaction_id: float
    command_object: Any
    arguments: tuple[Any, ...] = ()
    stream_id: int = 0
    timestamp: int = 0

    @property
    def info(self) -> dict[str, Any]:
        """The first object argument (onStatus / _result / _error information object), or {}."""
        for argument in self.arguments:
            if isinstance(argument, dict):
                return argument
        return {}

    @property
    def status_code(self) -> str | None:
        code = self.info.get("code")
        return code if isinstance(code, str) else None


@dataclass(frozen=True, slots=True)
class DataMessage:
    """A data message: `values` such as ["@setDataFrame", "onMetaData", {...}]."""

    values: tuple[Any, ...]
    stream_id: int = 0
    timestamp: int = 0
    # The body as received and its type (AMF0 or AMF3): a relay forwards these bytes, not a re-encoding.
    payload: bytes = field(default=b"", repr=False, compare=False)
    type_id: int = field(default=18, compare=False)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The onMetaData properties, whether sent with or without the @setDataFrame wrapper."""
        values = list(self.values)
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            return dict(values[1])
        return None


@dataclass(frozen=True, slots=True)
class AudioMessage:
    timestamp: int
    stream_id: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class VideoMessage:
    timestamp: int
    stream_id: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OtherMessage:
    """A message type we do not interpret (aggregate, shared object, AMF3 data...), kept whole."""

    raw: RawMessage


Event = (
    SetChunkSize
    | Abort
    | Acknowledgement
    | WindowAckSize
    | SetPeerBandwidth
    | UserControl
    | Command
    | DataMessage
    | AudioMessage
    | VideoMessage
    | OtherMessage
)


def _u32(payload: bytes, what: str, offset: int = 0) -> int:
    if len(payload) < offset + 4:
        raise ProtocolError(f"RTMP {what} message too short ({len(payload)} bytes)")
    value: int = _U32.unpack_from(payload, offset)[0]
    return value


def decode_message(raw: RawMessage, *, budget: amf0.ValueBudget | None = None, decode_data: bool = True) -> Event:
    """The event a reassembled message stands for. Raises ProtocolError when its body is malformed, or its
    AMF0 holds more values than `budget` has left. With `decode_data` false a data message's values are
    not decoded (a relay forwards its bytes as they came: `values` is empty)."""
    type_id, payload = raw.type_id, raw.payload
    if type_id == AUDIO:
        return AudioMessage(raw.timestamp, raw.stream_id, payload)
    if type_id == VIDEO:
        return VideoMessage(raw.timestamp, raw.stream_id, payload)
    if type_id in (COMMAND_AMF0, COMMAND_AMF3):
        body = payload[1:] if type_id == COMMAND_AMF3 and payload[:1] == b"\x00" else payload
        values = amf0.decode_all(body, budget=budget)
        if len(values) == 1 and isinstance(values[0], str):
            values.append(0.0)  # FFmpeg's RTMP server sends onFCPublish with its name alone
        if len(values) < 2 or not isinstance(values[0], str) or not isinstance(values[1], float):
            raise ProtocolError("RTMP command without a name and transaction id")
        return Command(
            values[0],
            values[1],
            values[2] if len(values) > 2 else None,
            tuple(values[3:]),
            raw.stream_id,
            raw.timestamp,
        )
    if type_id in (DATA_AMF0, DATA_AMF3):
        if not decode_data:
            return DataMessage((), raw.stream_id, raw.timestamp, payload, type_id)
        body = payload[1:] if type_id == DATA_AMF3 and payload[:1] == b"\x00" else payload
        return DataMessage(tuple(amf0.decode_all(body, budget=budget)), raw.stream_id, raw.timestamp, payload, type_id)
    if type_id == SET_CHUNK_SIZE:
        return SetChunkSize(_u32(payload, "Set Chunk Size") & 0x7FFFFFFF)
    if type_id == ABORT:
        return Abort(_u32(payload, "Abort"))
    if type_id == ACKNOWLEDGEMENT:
        return Acknowledgement(_u32(payload, "Acknowledgement"))
    if type_id == WINDOW_ACK_SIZE:
        return WindowAckSize(_u32(payload, "Window Acknowledgement Size"))
    if type_id == SET_PEER_BANDWIDTH:
        if len(payload) < 5:
            raise ProtocolError("RTMP Set Peer Bandwidth message too short")
        return SetPeerBandwidth(_u32(payload, "Set Peer Bandwidth"), payload[4])
    if type_id == USER_CONTROL:
        if len(payload) < 2:
            raise ProtocolError("RTMP User Control message too short")
        event_type = _U16.unpack_from(payload)[0]
        if event_type == SET_BUFFER_LENGTH:
            return UserControl(event_type, _u32(payload, "Set Buffer Length", 2), _u32(payload, "Set Buffer Length", 6))
        # Unknown event types (e.g. 31/32 from some servers) may carry fewer than 4 bytes: keep what is there.
        value = _U32.unpack_from(payload, 2)[0] if len(payload) >= 6 else 0
        return UserControl(event_type, value)
    return OtherMessage(raw)


# ---------------------------------------------------------------------------------------------- bodies


def u32_body(value: int) -> bytes:
    """Body of Set Chunk Size, Abort, Acknowledgement and Window Acknowledgement Size."""
    return _U32.pack(value & 0xFFFFFFFF)


def set_peer_bandwidth_body(size: int, limit_type: int = LIMIT_DYNAMIC) -> bytes:
    return _U32.pack(size) + bytes([limit_type])


def user_control_body(event_type: int, value: int, buffer_ms: int | None = None) -> bytes:
    body = _U16.pack(event_type) + _U32.pack(value & 0xFFFFFFFF)
    if buffer_ms is not None:
        body += _U32.pack(buffer_ms)
    return body


def command_body(name: str, transaction_id: float, command_object: Any = None, *arguments: Any) -> bytes:
    return amf0.encode(name, float(transaction_id), command_object, *arguments)


def data_body(*values: Any) -> bytes:
    return amf0.encode(*values)


def set_data_frame_body(metadata: dict[str, Any]) -> bytes:
    """`@setDataFrame onMetaData {...}` as OBS and ffmpeg send it before the first media."""
    return amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(metadata))

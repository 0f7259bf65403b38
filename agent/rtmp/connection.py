"""One RTMP connection as a sans-I/O state machine, for either end: handshake, chunk streams, protocol control.

Feed it bytes with `receive_data`, take typed events from `events_received`, and write whatever
`data_to_send` returns. It answers what needs no decision on its own (Acknowledgements per the peer's
window, ping responses) and leaves commands to the caller: the publisher in `client.py`, the relay later.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from agent.errors import ProtocolError
from agent.rtmp import amf0
from agent.rtmp import messages as m
from agent.rtmp.chunk_writer import ChunkWriter
from agent.rtmp.chunks import DEFAULT_MAX_MESSAGE_SIZE, ChunkReader, RawMessage, ReadLimits, WholeMessage
from agent.rtmp.handshake import ClientHandshake, ServerHandshake

# Chunk stream ids we send on (free choices; these match what librtmp-based encoders use).
CSID_CONTROL: Final = 2
CSID_COMMAND: Final = 3
CSID_AUDIO: Final = 4
CSID_STREAM: Final = 5  # stream-level commands and data messages
CSID_VIDEO: Final = 6


_MEDIA_TYPES: Final = frozenset({m.AUDIO, m.VIDEO})
# AMF0 values all the messages of one read may build together: about 0.3 ms of decoding, so even
# relay.max_connections (32) connections read in one event-loop step cost a few ms. A real peer's connect,
# releaseStream, FCPublish and createStream hold about 30 (and the relay does not decode data messages);
# a read of commands crafted to be slow to decode is refused.
AMF_VALUES_PER_READ: Final = 256


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class RtmpConnection:
    """The protocol state of one connection. Methods never block and never touch a socket.

    `bytes_received` / `bytes_sent` count chunk-stream bytes after the handshake, which is what RTMP
    Acknowledgement sequence numbers count on both ends (nginx-rtmp, librtmp).
    """

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        read_limits: ReadLimits | None = None,
        epoch_ms: int = 0,
        handshake_random: bytes | None = None,
    ) -> None:
        self.role = role
        self._handshake = (
            ClientHandshake(epoch_ms, handshake_random)
            if role is Role.CLIENT
            else ServerHandshake(epoch_ms, handshake_random)
        )
        self._reader = ChunkReader(max_message_size=max_message_size)
        if read_limits is not None:
            self._reader.set_limits(read_limits)
        self._writer = ChunkWriter()
        first = self._handshake.data_to_send()
        # What to send, as pieces joined once in data_to_send: a forwarded frame's payload is copied once,
        # into the bytes handed to the socket, not into a buffer first.
        self._outgoing: list[bytes | memoryview] = [first] if first else []
        self._events: list[m.Event] = []
        self.bytes_received = 0
        self.bytes_sent = 0
        self.handshake_bytes_sent = len(first)
        self.peer_window_ack_size: int | None = None  # from the peer's Window Acknowledgement Size
        self.peer_bandwidth: int | None = None  # from the peer's Set Peer Bandwidth
        self.peer_acknowledged: int | None = None  # last Acknowledgement sequence number from the peer
        self._acked_received = 0
        self._failed: ProtocolError | None = None
        # A relay forwards data messages (onMetaData, onTextData) as they came: it may skip decoding them.
        self.decode_data_values = True

    # ------------------------------------------------------------------------------------------ input

    @property
    def handshake_complete(self) -> bool:
        return self._handshake.complete

    @property
    def in_chunk_size(self) -> int:
        return self._reader.chunk_size

    @property
    def out_chunk_size(self) -> int:
        return self._writer.chunk_size

    def set_read_limits(self, limits: ReadLimits) -> None:
        """Bound what the peer may make us hold from now on (the relay raises them when a stream publishes)."""
        self._reader.set_limits(limits)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer. Raises ProtocolError on malformed input; the connection is then dead."""
        if self._failed is not None:
            raise self._failed
        try:
            self._receive(data)
        except ProtocolError as exc:
            self._failed = exc
            raise

    def _receive(self, data: bytes | bytearray | memoryview) -> None:
        if not self._handshake.complete:
            data = self._handshake.receive_data(data)
            answer = self._handshake.data_to_send()
            self.handshake_bytes_sent += len(answer)
            if answer:
                self._outgoing.append(answer)
            if not self._handshake.complete or not data:
                return
        self.bytes_received += len(data)
        self.take_messages(self._reader.receive_data(data))
        self._acknowledge_if_due()

    def receive_messages(self, data: memoryview) -> tuple[list[WholeMessage], list[RawMessage], bool]:
        """Bytes from the peer, once the handshake is complete, as messages NOT yet handled: the leading
        media messages that came whole (`ChunkReader.receive_whole`), then the rest. The caller forwards
        the media it can and gives everything else, in order, to `take_messages`. (The relay's fast lane: a
        media message then costs no event object.) The third value says an Acknowledgement fell due and
        waits in `data_to_send`. Raises ProtocolError like `receive_data` (the reader
        remembers a failure and raises it again). Only once the handshake is complete: not checked here, to
        keep the per-frame path short; the relay takes this path only for a stream that is publishing."""
        try:
            received = self._reader.receive_whole(data)
        except ProtocolError as exc:
            self._failed = exc
            raise
        self.bytes_received += len(data)
        window = self.peer_window_ack_size
        if window and self.bytes_received - self._acked_received >= window:  # as _acknowledge_if_due, inline
            self._acknowledge()
            return received[0], received[1], True
        return received[0], received[1], False

    def take_messages(self, raws: list[RawMessage]) -> None:
        """Handle whole messages (protocol control here; everything becomes an event)."""
        events = self._events
        budget = amf0.ValueBudget(AMF_VALUES_PER_READ)
        decode_data = self.decode_data_values
        for raw in raws:
            event = m.decode_message(raw, budget=budget, decode_data=decode_data)
            if raw.type_id not in _MEDIA_TYPES:
                self._handle(event)
            events.append(event)

    def _acknowledge_if_due(self) -> None:
        window = self.peer_window_ack_size
        if window and self.bytes_received - self._acked_received >= window:
            self._acknowledge()

    def _acknowledge(self) -> None:
        self._acked_received = self.bytes_received
        self._send(CSID_CONTROL, 0, m.ACKNOWLEDGEMENT, 0, m.u32_body(self.bytes_received))

    def _handle(self, event: m.Event) -> None:
        if isinstance(event, m.WindowAckSize):
            self.peer_window_ack_size = event.size
        elif isinstance(event, m.SetPeerBandwidth):
            self.peer_bandwidth = event.size
        elif isinstance(event, m.Acknowledgement):
            self.peer_acknowledged = event.sequence_number
        elif isinstance(event, m.UserControl) and event.event_type == m.PING_REQUEST:
            self.send_user_control(m.PING_RESPONSE, event.value)

    def events_received(self) -> list[m.Event]:
        events, self._events = self._events, []
        return events

    # ----------------------------------------------------------------------------------------- output

    def data_to_send(self) -> bytes:
        pieces = self._outgoing
        if not pieces:
            return b""
        self._outgoing = []
        return b"".join(pieces)

    def pieces_to_send(self) -> list[bytes | memoryview]:
        """What `data_to_send` would join, unjoined (headers and views of the payloads): for a transport
        that writes them with one writev, so a forwarded frame is not copied on its way to the kernel."""
        pieces, self._outgoing = self._outgoing, []
        return pieces

    def _send(self, csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes | bytearray) -> None:
        if not self._handshake.complete:
            raise RuntimeError("cannot send RTMP messages before the handshake completes")
        size = self._writer.write_into(self._outgoing, csid, timestamp, type_id, stream_id, payload)
        self.bytes_sent += size

    def send_message(self, csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes) -> None:
        """Any message, as is (the relay forwards every frame this way: one call less than `_send`)."""
        if not self._handshake.complete:
            raise RuntimeError("cannot send RTMP messages before the handshake completes")
        self.bytes_sent += self._writer.write_into(self._outgoing, csid, timestamp, type_id, stream_id, payload)

    def forward_media(self, csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes) -> int:
        """`send_message` for a relay forwarding a live stream (so past the handshake, unchecked): returns
        `bytes_sent` after it, where the message ends in this connection's byte stream."""
        self.bytes_sent += self._writer.write_into(self._outgoing, csid, timestamp, type_id, stream_id, payload)
        return self.bytes_sent

    def send_set_chunk_size(self, chunk_size: int) -> None:
        if not self._handshake.complete:
            raise RuntimeError("cannot send RTMP messages before the handshake completes")
        data = self._writer.set_chunk_size_message(chunk_size)
        self.bytes_sent += len(data)
        self._outgoing.append(data)

    def send_window_ack_size(self, size: int) -> None:
        """Ask the peer for an Acknowledgement every `size` bytes we send."""
        self._send(CSID_CONTROL, 0, m.WINDOW_ACK_SIZE, 0, m.u32_body(size))

    def send_set_peer_bandwidth(self, size: int, limit_type: int = m.LIMIT_DYNAMIC) -> None:
        self._send(CSID_CONTROL, 0, m.SET_PEER_BANDWIDTH, 0, m.set_peer_bandwidth_body(size, limit_type))

    def send_user_control(self, event_type: int, value: int, buffer_ms: int | None = None) -> None:
        self._send(CSID_CONTROL, 0, m.USER_CONTROL, 0, m.user_control_body(event_type, value, buffer_ms))

    def send_command(
        self,
        name: str,
        transaction_id: float,
        command_object: Any = None,
        *arguments: Any,
        stream_id: int = 0,
    ) -> None:
        csid = CSID_COMMAND if stream_id == 0 else CSID_STREAM
        body = m.command_body(name, transaction_id, command_object, *arguments)
        self._send(csid, 0, m.COMMAND_AMF0, stream_id, body)

    def send_data(self, *values: Any, stream_id: int, timestamp: int = 0) -> None:
        self._send(CSID_STREAM, timestamp, m.DATA_AMF0, stream_id, m.data_body(*values))

    def send_metadata(self, metadata: dict[str, Any], *, stream_id: int) -> None:
        self._send(CSID_STREAM, 0, m.DATA_AMF0, stream_id, m.set_data_frame_body(metadata))

    def send_audio(self, timestamp: int, payload: bytes, *, stream_id: int) -> None:
        self._send(CSID_AUDIO, timestamp, m.AUDIO, stream_id, payload)

    def send_video(self, timestamp: int, payload: bytes, *, stream_id: int) -> None:
        self._send(CSID_VIDEO, timestamp, m.VIDEO, stream_id, payload)

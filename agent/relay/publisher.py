"""The server side of one encoder's RTMP connection to the relay, without I/O: bytes in, events and bytes out.

It answers the publish sequence (connect, releaseStream, FCPublish, createStream, publish, FCUnpublish,
deleteStream) with the messages nginx-rtmp sends, so encoders see what they see at a real ingest, and turns
audio, video and data messages on the published stream into classified `Frame`s. Whether a publish is
accepted is the caller's decision (`PublishRequested` -> `accept_publish` / `reject_publish`): only the
relay knows whether another encoder is already live. Handshake, chunking and acknowledgements are the
sans-I/O core's (`agent/rtmp/connection.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from agent.peer_text import printable
from agent.relay.frames import Frame, FrameClassifier, audio_kind
from agent.rtmp import messages as m
from agent.rtmp.chunks import RawMessage, ReadLimits
from agent.rtmp.connection import Role, RtmpConnection

# What nginx-rtmp 1.1.4 sends (recorded in the fixtures' rtmp-publish.s2c.bin).
SERVER_WINDOW_ACK_SIZE: Final = 5_000_000
SERVER_PEER_BANDWIDTH: Final = 5_000_000
SERVER_CHUNK_SIZE: Final = 4096
SERVER_FMS_VERSION: Final = "FMS/3,0,1,123"
SERVER_CAPABILITIES: Final = 31.0
STREAM_ID: Final = 1  # nginx hands out stream id 1 to a publisher; so do we
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024 - 1  # the 24-bit length field's limit: an 8K keyframe fits
# Until a publish is accepted, nobody has shown a key: a connection may hold no more than a command needs
# (OBS's connect is about 300 bytes). Audio and video keep the stream's size limit (an encoder may send its
# first keyframe right behind publish), but what is held of them counts against the same small bound.
COMMAND_BYTES_BEFORE_PUBLISH: Final = 64 * 1024
HELD_BYTES_BEFORE_PUBLISH: Final = 128 * 1024
# Once publishing, what the relay's settings allow (relay.max_frame_bytes and friends); these are for a
# session built without them (tests, benchmarks).
STREAM_LIMITS: Final = ReadLimits(
    max_message_size=MAX_MESSAGE_SIZE, max_command_size=1024 * 1024, max_pending_bytes=2 * MAX_MESSAGE_SIZE
)


def limits_before_publish(stream: ReadLimits) -> ReadLimits:
    return ReadLimits(
        max_message_size=stream.max_message_size,
        max_command_size=min(COMMAND_BYTES_BEFORE_PUBLISH, stream.max_command_size),
        max_pending_bytes=HELD_BYTES_BEFORE_PUBLISH,
    )


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """The encoder asked to publish. `stream_name` is its stream key: a secret, never log it."""

    app: str
    stream_name: str
    encoder: str | None  # connect's flashVer, e.g. "FMLE/3.0 (compatible; FMSc/1.0)" (OBS)


@dataclass(frozen=True, slots=True)
class PublishStopped:
    """The encoder said it is done (deleteStream / closeStream; FCUnpublish comes first and changes nothing)."""

    command: str


PublisherEvent = PublishRequested | PublishStopped | Frame
_MEDIA_EVENTS: Final = (m.AudioMessage, m.VideoMessage)


class PublisherSession:
    """One encoder connection in the server role. Feed `receive_data`, collect `events()`, send `data_to_send()`.

    What the peer may make it hold is small until a publish is accepted (`limits_before_publish`), then
    `stream_limits` while it publishes, and small again once it stops or is refused."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, stream_limits: ReadLimits = STREAM_LIMITS
    ) -> None:
        self._stream_limits = stream_limits
        self._limits_before_publish = limits_before_publish(stream_limits)
        self._connection = RtmpConnection(Role.SERVER, read_limits=self._limits_before_publish)
        self._connection.decode_data_values = False  # forwarded as they came; decoding them is work for nothing
        self._classifier = FrameClassifier()
        self._clock = clock
        self._events: list[PublisherEvent] = []
        self.app: str | None = None
        self.encoder: str | None = None
        self.publishing = False
        self._publish_pending: m.Command | None = None
        self._held: list[Frame] = []  # frames that arrived while the publish waited for a decision
        self.messages_ignored = 0  # media before publish, on another stream, or unknown commands

    @property
    def connection(self) -> RtmpConnection:
        return self._connection

    @property
    def handshake_complete(self) -> bool:
        return self._connection.handshake_complete

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Raises ProtocolError on malformed input; the connection must then be closed."""
        self._connection.receive_data(data)
        self._take_events()

    def take_messages(self, raws: list[RawMessage]) -> None:
        """Whole messages the relay's fast lane read (`connection.receive_messages`) but did not forward itself."""
        self._connection.take_messages(raws)
        self._take_events()

    @property
    def classifier(self) -> FrameClassifier:
        return self._classifier

    def _take_events(self) -> None:
        now = self._clock()
        classifier = self._classifier
        for event in self._connection.events_received():
            if isinstance(event, _MEDIA_EVENTS):
                is_video = type(event) is m.VideoMessage
                if self.publishing and event.stream_id == STREAM_ID and self._publish_pending is None:
                    # The live stream's media, i.e. nearly every message: classified and queued right here.
                    payload = event.payload
                    kind, codec = classifier.video(payload, event.timestamp) if is_video else audio_kind(payload)
                    self._events.append(
                        Frame(m.VIDEO if is_video else m.AUDIO, event.timestamp, payload, kind, codec, now)
                    )
                else:
                    self._media(m.VIDEO if is_video else m.AUDIO, event.stream_id, event.timestamp, event.payload, now)
            elif isinstance(event, m.Command):
                self._command(event)
            elif isinstance(event, m.DataMessage):
                self._media(event.type_id, event.stream_id, event.timestamp, event.payload, now)

    def events(self) -> list[PublisherEvent]:
        """What happened since the last call. Deciding on a publish can release more: call again until empty."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        return self._connection.data_to_send()

    # ------------------------------------------------------------------------------------ decisions

    def accept_publish(self) -> None:
        command = self._publish_pending
        if command is None:
            return
        self._publish_pending = None
        self.publishing = True
        self._connection.set_read_limits(self._stream_limits)
        self._status(command.stream_id, "status", "NetStream.Publish.Start", "Start publishing")
        self._events.extend(self._held)  # returned by the next `events()`
        self._held.clear()

    def reject_publish(self, code: str = "NetStream.Publish.BadName", description: str = "Already publishing") -> None:
        command = self._publish_pending
        if command is None:
            return
        self._publish_pending = None
        self.messages_ignored += len(self._held)
        self._held.clear()
        self._status(command.stream_id, "error", code, description)

    # ------------------------------------------------------------------------------------- internals

    def _media(self, type_id: int, stream_id: int, timestamp: int, payload: bytes, now: float) -> None:
        held = self._publish_pending is not None
        if not (self.publishing or held) or stream_id != STREAM_ID:
            self.messages_ignored += 1
            return
        kind, codec = self._classifier.classify(type_id, payload, timestamp)
        (self._held if held else self._events).append(Frame(type_id, timestamp, payload, kind, codec, now))

    def _command(self, command: m.Command) -> None:
        name, conn = command.name, self._connection
        if name == "connect":
            info: dict[str, Any] = command.command_object if isinstance(command.command_object, dict) else {}
            app = info.get("app")
            self.app = printable(app) if isinstance(app, str) else ""  # shown in logs, the API, the TUI
            flash = info.get("flashVer")
            self.encoder = printable(flash) if isinstance(flash, str) else None
            encoding = info.get("objectEncoding")
            conn.send_window_ack_size(SERVER_WINDOW_ACK_SIZE)
            conn.send_set_peer_bandwidth(SERVER_PEER_BANDWIDTH, m.LIMIT_DYNAMIC)
            conn.send_set_chunk_size(SERVER_CHUNK_SIZE)
            conn.send_command(
                "_result",
                command.transaction_id,
                {"fmsVer": SERVER_FMS_VERSION, "capabilities": SERVER_CAPABILITIES},
                {
                    "level": "status",
                    "code": "NetConnection.Connect.Success",
                    "description": "Connection succeeded.",
                    "objectEncoding": encoding if isinstance(encoding, float) else 0.0,
                },
            )
        elif name == "createStream":
            conn.send_command("_result", command.transaction_id, None, float(STREAM_ID))
        elif name == "publish":
            if self.publishing or self._publish_pending is not None:
                self._status(command.stream_id, "error", "NetStream.Publish.BadName", "Already publishing")
                return
            stream_name = command.arguments[0] if command.arguments else ""
            self._publish_pending = command
            self._events.append(
                PublishRequested(self.app or "", stream_name if isinstance(stream_name, str) else "", self.encoder)
            )
        elif name in ("deleteStream", "closeStream"):
            if self.publishing:
                self.publishing = False
                self._connection.set_read_limits(self._limits_before_publish)
                self._status(STREAM_ID, "status", "NetStream.Unpublish.Success", "Stop publishing")
                self._events.append(PublishStopped(name))
        elif name in ("releaseStream", "FCPublish", "FCUnpublish", "_checkbw", "getStreamLength"):
            pass  # nginx-rtmp answers none of these
        else:
            self.messages_ignored += 1

    def _status(self, stream_id: int, level: str, code: str, description: str) -> None:
        info = {"level": level, "code": code, "description": description}
        self._connection.send_command("onStatus", 0, None, info, stream_id=stream_id or STREAM_ID)

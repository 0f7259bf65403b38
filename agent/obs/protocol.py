"""The obs-websocket v5 protocol without I/O: messages in (text), events and replies out, text to send out.

`ObsProtocol` is fed every text frame the server sends (`receive_text`) and hands back what it means:
the Hello's authentication string is computed and the Identify queued, replies are matched to their
request ids, request status codes become `ObsRequestFailed`, events are collected. Anything that is not
obs-websocket (not JSON, wrong op code, reply to nothing we asked) raises `ProtocolError`: the caller
drops that connection. No sockets here, so tests feed the recorded session line by line.
It is not a general obs-websocket library: it covers what streamhealth asks OBS.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from agent.errors import AuthenticationFailed, ProtocolError, SourceUnavailable

RPC_VERSION = 1
SUBPROTOCOL = "obswebsocket.json"


class OpCode(IntEnum):
    HELLO = 0
    IDENTIFY = 1
    IDENTIFIED = 2
    REIDENTIFY = 3
    EVENT = 5
    REQUEST = 6
    REQUEST_RESPONSE = 7
    REQUEST_BATCH = 8
    REQUEST_BATCH_RESPONSE = 9


class EventSubscription(IntEnum):
    GENERAL = 1 << 0
    CONFIG = 1 << 1
    SCENES = 1 << 2
    OUTPUTS = 1 << 6


# What we listen to: stream state (Outputs), profile changes (Config: settings to re-read), and the
# program scene (Scenes: so the backup plan knows when the streamer switched by hand).
DEFAULT_SUBSCRIPTIONS = EventSubscription.OUTPUTS | EventSubscription.CONFIG | EventSubscription.SCENES

# obs-websocket's WebSocketCloseCode values we explain to the user.
CLOSE_AUTHENTICATION_FAILED = 4009
CLOSE_UNSUPPORTED_RPC_VERSION = 4010
CLOSE_SESSION_INVALIDATED = 4011  # kicked from OBS's "WebSocket Server Settings" dialog
CLOSE_NOT_IDENTIFIED = 4007
CLOSE_UNKNOWN_OP_CODE = 4005
CLOSE_MESSAGE_DECODE_ERROR = 4002

# obs-websocket's RequestStatus codes (the common ones; others are shown by number).
REQUEST_STATUS_NAMES: dict[int, str] = {
    100: "Success",
    203: "MissingRequestType",
    204: "UnknownRequestType",
    205: "GenericError",
    206: "UnsupportedRequestBatchExecutionType",
    207: "NotReady",
    300: "MissingRequestField",
    301: "MissingRequestData",
    400: "InvalidRequestField",
    401: "InvalidRequestFieldType",
    402: "RequestFieldOutOfRange",
    403: "RequestFieldEmpty",
    404: "TooManyRequestFields",
    500: "OutputRunning",
    501: "OutputNotRunning",
    502: "OutputPaused",
    503: "OutputNotPaused",
    504: "OutputDisabled",
    505: "StudioModeActive",
    506: "StudioModeNotActive",
    600: "ResourceNotFound",
    601: "ResourceAlreadyExists",
    602: "InvalidResourceType",
    603: "NotEnoughResources",
    604: "InvalidResourceState",
    605: "InvalidInputKind",
    606: "ResourceNotConfigurable",
    607: "InvalidFilterKind",
    700: "ResourceCreationFailed",
    701: "ResourceActionFailed",
    702: "RequestProcessingFailed",
    703: "CannotAct",
}


class ObsRequestFailed(SourceUnavailable):
    """OBS answered a request with a failure status; the connection itself is fine."""

    def __init__(self, request_type: str, code: int, comment: str | None) -> None:
        name = REQUEST_STATUS_NAMES.get(code, "unknown status")
        detail = f": {comment}" if comment else ""
        super().__init__(f"OBS refused {request_type} (status {code} {name}){detail}")
        self.request_type = request_type
        self.code = code
        self.comment = comment


class ObsClosed(SourceUnavailable):
    """The obs-websocket connection ended; `code` is the WebSocket close code (None: no close frame)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ObsAuthenticationFailed(AuthenticationFailed):
    """OBS refused the password (close code 4009), or wants one and none is configured."""


class ObsKicked(ObsClosed):
    """Someone disconnected us from OBS's WebSocket server settings (close code 4011)."""


def authentication_string(password: str, salt: str, challenge: str) -> str:
    """The obs-websocket v5 answer to a Hello: base64(sha256(base64(sha256(password + salt)) + challenge))."""
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest()).decode()
    return base64.b64encode(hashlib.sha256((secret + challenge).encode()).digest()).decode()


def explain_close(code: int | None, reason: str = "") -> ObsClosed | ObsAuthenticationFailed:
    """Turn a close code into the error a user can act on."""
    if code == CLOSE_AUTHENTICATION_FAILED:
        return ObsAuthenticationFailed(
            "authentication failed: OBS refused the password (close code 4009): check sources.obs.password "
            "(OBS: Tools > WebSocket Server Settings > Show Connect Info)"
        )
    if code == CLOSE_SESSION_INVALIDATED:
        return ObsKicked(
            "OBS disconnected the agent from its WebSocket server settings (close code 4011); "
            "not reconnecting until asked (POST /api/v1/obs/reconnect or restart the agent)",
            code,
        )
    if code == CLOSE_UNSUPPORTED_RPC_VERSION:
        return ObsClosed("this OBS speaks another obs-websocket RPC version (close code 4010): update OBS to 28+", code)
    why = f" ({reason})" if reason else ""
    shown = f"close code {code}" if code is not None else "no close frame"
    return ObsClosed(f"OBS closed the connection ({shown}){why}", code)


@dataclass(frozen=True)
class ObsEvent:
    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ObsReply:
    request_id: str
    request_type: str
    data: dict[str, Any] | None = None
    error: ObsRequestFailed | None = None


@dataclass
class ObsProtocol:
    """One obs-websocket session's state: handshake, pending request ids, received events."""

    password: str | None = None
    event_subscriptions: int = int(DEFAULT_SUBSCRIPTIONS)
    identified: bool = False
    negotiated_rpc_version: int | None = None
    obs_websocket_version: str | None = None
    sent_authentication: str | None = None
    _pending: dict[str, str] = field(default_factory=dict)
    _forgotten: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _outgoing: list[str] = field(default_factory=list)
    _events: list[ObsEvent] = field(default_factory=list)
    _replies: list[ObsReply] = field(default_factory=list)

    # --- input ------------------------------------------------------------------------------------

    def receive_text(self, text: str | bytes) -> None:
        """Feed one frame from the server. Raises ProtocolError for anything that is not obs-websocket."""
        if isinstance(text, bytes):
            raise ProtocolError("OBS sent a binary frame; obs-websocket (JSON) sends text only")
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            raise ProtocolError("OBS sent a frame that is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("d"), dict):
            raise ProtocolError("OBS sent a message without the obs-websocket {op, d} shape")
        op, data = message.get("op"), message["d"]
        if op == OpCode.HELLO:
            self._on_hello(data)
        elif not self.identified and op != OpCode.IDENTIFIED:
            raise ProtocolError(f"OBS sent op code {op!r} before the session was identified")
        elif op == OpCode.IDENTIFIED:
            self.identified = True
            self.negotiated_rpc_version = _int(data.get("negotiatedRpcVersion"))
        elif op == OpCode.EVENT:
            event_type = data.get("eventType")
            if not isinstance(event_type, str):
                raise ProtocolError("OBS sent an event without an eventType")
            event_data = data.get("eventData")
            self._events.append(ObsEvent(event_type, event_data if isinstance(event_data, dict) else {}))
        elif op == OpCode.REQUEST_RESPONSE:
            self._on_response(data)
        else:
            raise ProtocolError(f"OBS sent op code {op!r}, which a client never receives")

    def _on_hello(self, data: dict[str, Any]) -> None:
        if self.identified or self.sent_authentication is not None:
            raise ProtocolError("OBS sent a second Hello")
        rpc = _int(data.get("rpcVersion"))
        if rpc is None or rpc < RPC_VERSION:
            raise ProtocolError(f"OBS speaks obs-websocket RPC version {rpc!r}; streamhealth needs {RPC_VERSION}")
        version = data.get("obsWebSocketVersion")
        self.obs_websocket_version = version if isinstance(version, str) else None
        identify: dict[str, Any] = {"rpcVersion": RPC_VERSION, "eventSubscriptions": self.event_subscriptions}
        auth = data.get("authentication")
        if isinstance(auth, dict):
            salt, challenge = auth.get("salt"), auth.get("challenge")
            if not isinstance(salt, str) or not isinstance(challenge, str):
                raise ProtocolError("OBS's Hello asks for authentication without a salt and challenge")
            if not self.password:
                raise ObsAuthenticationFailed(
                    "authentication failed: OBS requires a password and none is set: set sources.obs.password "
                    "(OBS: Tools > WebSocket Server Settings > Show Connect Info)"
                )
            identify["authentication"] = authentication_string(self.password, salt, challenge)
        self.sent_authentication = identify.get("authentication", "")
        self._outgoing.append(json.dumps({"op": int(OpCode.IDENTIFY), "d": identify}))

    def _on_response(self, data: dict[str, Any]) -> None:
        request_id = data.get("requestId")
        if isinstance(request_id, str) and request_id in self._forgotten:
            self._forgotten.discard(request_id)  # the late answer to a request that timed out
            return
        if not isinstance(request_id, str) or request_id not in self._pending:
            raise ProtocolError("OBS answered a request streamhealth never sent")
        request_type = self._pending.pop(request_id)
        status = data.get("requestStatus")
        if not isinstance(status, dict) or not isinstance(status.get("result"), bool):
            raise ProtocolError(f"OBS's answer to {request_type} has no requestStatus")
        if status["result"]:
            response = data.get("responseData")
            self._replies.append(ObsReply(request_id, request_type, response if isinstance(response, dict) else {}))
            return
        code = _int(status.get("code")) or 0
        comment = status.get("comment")
        error = ObsRequestFailed(request_type, code, comment if isinstance(comment, str) else None)
        self._replies.append(ObsReply(request_id, request_type, error=error))

    # --- output -----------------------------------------------------------------------------------

    def request(self, request_type: str, request_data: dict[str, Any] | None = None) -> str:
        """Queue a request; returns its id, which the matching `ObsReply` carries."""
        if not self.identified:
            raise ProtocolError("cannot send a request before OBS identified the session")
        request_id = f"sh{next(self._ids)}"
        payload: dict[str, Any] = {"requestType": request_type, "requestId": request_id}
        if request_data is not None:
            payload["requestData"] = request_data
        self._pending[request_id] = request_type
        self._outgoing.append(json.dumps({"op": int(OpCode.REQUEST), "d": payload}))
        return request_id

    def forget(self, request_id: str) -> None:
        """Stop waiting for a request (timed out); a late answer to it is then ignored."""
        if self._pending.pop(request_id, None) is not None:
            if len(self._forgotten) > 1000:  # OBS never answers them: keep the set bounded
                self._forgotten.clear()
            self._forgotten.add(request_id)

    def data_to_send(self) -> list[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[ObsEvent]:
        out, self._events = self._events, []
        return out

    def replies_received(self) -> list[ObsReply]:
        out, self._replies = self._replies, []
        return out

    @property
    def pending_request_ids(self) -> frozenset[str]:
        return frozenset(self._pending)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

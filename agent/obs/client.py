"""A thin asyncio obs-websocket v5 client: the `websockets` library carries frames, `ObsProtocol` does the rest.

One object per connection: `connect()` opens and identifies (or raises the reason it cannot), `request()`
sends one request and waits for its reply, `next_event()` hands over OBS's events. Every await has a
timeout. When the connection ends, every waiter gets the same translated error (`ObsClosed`,
`ObsAuthenticationFailed`, `ObsKicked`, `ProtocolError`); reconnecting is the caller's decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from agent.errors import ProtocolError, SourceUnavailable, StreamHealthError
from agent.obs.protocol import (
    DEFAULT_SUBSCRIPTIONS,
    SUBPROTOCOL,
    ObsEvent,
    ObsProtocol,
    explain_close,
)

log = logging.getLogger(__name__)

CLOSE_PROTOCOL_ERROR = 1002
# A WebSocket upgrade answer is a few hundred bytes. A peer that sends more before it is done is not
# obs-websocket; websockets would read and discard its bytes until the open timeout, at full speed.
MAX_UPGRADE_RESPONSE_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # GetVersion lists every request; nothing we ask is near this
EVENT_QUEUE_SIZE = 256


class _GuardedConnection(ClientConnection):
    """Stops reading a peer that floods us before the upgrade is done (random bytes at the OBS port):
    the connection is dropped at once, so a broken peer costs a few KB per attempt, not a core."""

    upgrade_bytes = 0
    flooded = False

    def data_received(self, data: bytes) -> None:
        if self.protocol.state is State.CONNECTING:
            self.upgrade_bytes += len(data)
            if self.upgrade_bytes > MAX_UPGRADE_RESPONSE_BYTES:
                self.flooded = True
                self.transport.abort()
                return
        super().data_received(data)


class ObsClient:
    def __init__(
        self,
        url: str,
        password: str | None,
        *,
        timeout_s: float = 5.0,
        event_subscriptions: int = int(DEFAULT_SUBSCRIPTIONS),
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.protocol = ObsProtocol(password=password, event_subscriptions=event_subscriptions)
        self._connection: ClientConnection | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[ObsEvent | None] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._reader: asyncio.Task[None] | None = None
        self.error: StreamHealthError | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the WebSocket and identify; raises a `SourceUnavailable` subclass saying why not."""
        try:
            async with asyncio.timeout(self.timeout_s + 1):
                self._connection = await connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    proxy=None,  # OBS is on this machine or the LAN: never through an HTTP proxy
                    compression=None,
                    open_timeout=self.timeout_s,
                    close_timeout=2,
                    max_size=MAX_MESSAGE_BYTES,
                    create_connection=_GuardedConnection,
                )
        except (OSError, TimeoutError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SourceUnavailable(
                f"nothing answers at {self.url} ({reason}); start OBS and enable "
                "Tools > WebSocket Server Settings > Enable WebSocket server, or check sources.obs.url"
            ) from None
        except InvalidURI:
            raise SourceUnavailable(f"sources.obs.url {self.url!r} is not a ws:// or wss:// URL") from None
        except InvalidHandshake as exc:
            raise SourceUnavailable(f"{self.url} is not an obs-websocket server ({exc})") from None
        try:
            await self._handshake()
        except BaseException:
            await self.close()
            raise
        self._reader = asyncio.create_task(self._read_forever(), name="obs-websocket reader")

    async def _handshake(self) -> None:
        assert self._connection is not None
        while not self.protocol.identified:
            try:
                async with asyncio.timeout(self.timeout_s):
                    frame = await self._connection.recv()
            except TimeoutError:
                raise SourceUnavailable(
                    f"OBS did not finish the obs-websocket handshake within {self.timeout_s:g} s"
                ) from None
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from None
            self.protocol.receive_text(frame)
            await self._flush()

    async def close(self) -> None:
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            await asyncio.wait([self._reader], timeout=3)  # never swallows a cancellation of our own task
        if self._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await self._connection.close()
        self._fail(self.error or SourceUnavailable("the OBS connection was closed"))

    # --- use --------------------------------------------------------------------------------------

    async def request(self, request_type: str, request_data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return its responseData; `ObsRequestFailed` when OBS says no."""
        if self.error is not None:
            raise self.error
        request_id = self.protocol.request(request_type, request_data)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = waiter
        try:
            await self._flush()
            async with asyncio.timeout(self.timeout_s):
                return await waiter
        except TimeoutError:
            self.protocol.forget(request_id)
            raise SourceUnavailable(f"OBS did not answer {request_type} within {self.timeout_s:g} s") from None
        finally:
            self._waiters.pop(request_id, None)

    async def next_event(self, timeout_s: float) -> ObsEvent | None:
        """The next event, or None when none came within `timeout_s`; raises once the connection ended."""
        if self.error is not None and self._events.empty():
            raise self.error
        try:
            async with asyncio.timeout(timeout_s):
                event = await self._events.get()
        except TimeoutError:
            return None
        if event is None:
            assert self.error is not None
            raise self.error
        return event

    @property
    def connected(self) -> bool:
        return self.error is None and self._connection is not None

    # --- internals --------------------------------------------------------------------------------

    async def _flush(self) -> None:
        assert self._connection is not None
        for text in self.protocol.data_to_send():
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._connection.send(text)
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from None
            except TimeoutError:
                raise SourceUnavailable(f"OBS did not take a message within {self.timeout_s:g} s") from None

    async def _read_forever(self) -> None:
        assert self._connection is not None
        error: StreamHealthError
        try:
            async for frame in self._connection:
                self.protocol.receive_text(frame)
                for reply in self.protocol.replies_received():
                    waiter = self._waiters.get(reply.request_id)
                    if waiter is None or waiter.done():
                        continue
                    if reply.error is not None:
                        waiter.set_exception(reply.error)
                    else:
                        waiter.set_result(reply.data or {})
                for event in self.protocol.events_received():
                    if self._events.full():  # nobody reads events: keep the newest
                        self._events.get_nowait()
                    self._events.put_nowait(event)
            error = self._closed_error(None)
        except ConnectionClosed as exc:
            error = self._closed_error(exc)
        except ProtocolError as exc:
            log.warning("dropping the OBS connection: %s", exc)
            error = ProtocolError(f"{exc}; dropped the connection, reconnecting")
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await self._connection.close(CLOSE_PROTOCOL_ERROR, "not obs-websocket")
        self._fail(error)

    def _closed_error(self, exc: ConnectionClosed | None) -> StreamHealthError:
        connection = self._connection
        code = connection.close_code if connection is not None else None
        reason = (connection.close_reason or "") if connection is not None else ""
        if exc is not None and exc.rcvd is not None:
            code, reason = exc.rcvd.code, exc.rcvd.reason
        if code == 1006:  # no close frame: OBS quit or the TCP connection broke
            code = None
        return explain_close(code, reason)

    def _fail(self, error: StreamHealthError) -> None:
        if self.error is None:
            self.error = error
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(self.error)
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(None)

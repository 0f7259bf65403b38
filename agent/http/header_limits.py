"""Bounds on what a peer may cost before its request's headers are complete, for the agent and the collector.

uvicorn bounds none of it: a connection that sends nothing, or dribbles a header a byte at a time, is held
forever, and its headers pile up without limit. Nothing is authenticated before the headers are complete (the
token is one of them), so any peer that reaches the port could hold file descriptors the relay needs for its
ingest connections, in the same process, or grow its memory. This is uvicorn's httptools protocol with
three bounds, as nginx has them (client_header_timeout, large_client_header_buffers):

- each request's headers must be complete within `deadline_s` of its first byte (of the connection, for
  the first request): else 408 with the JSON error body, and the connection is closed;
- the request line and headers may add up to `max_header_bytes`: else 431, and closed;
- at most `max_waiting` connections may wait for their headers at once: a new one closes the oldest (an
  honest client sends its headers at once, so the oldest waiting is most likely an idle attacker's).

A keep-alive connection between requests is uvicorn's (`timeout_keep_alive`, 5 s). Bodies are bounded
elsewhere (limits.py, and the collector's body deadline). Not for anything past the headers.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from typing import Any, ClassVar, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agent.http.errors import error_body

HEADER_DEADLINE_S: Final = 10.0
MAX_HEADER_BYTES: Final = 32 * 1024
MAX_WAITING_CONNECTIONS: Final = 512  # a burst of honest clients (a fleet shipping at once) must fit

_STATUS_LINES: Final = {408: b"408 Request Timeout", 431: b"431 Request Header Fields Too Large"}
# Per server (its uvicorn ServerState): the connections waiting for their headers, oldest first.
_waiting_by_server: weakref.WeakKeyDictionary[Any, OrderedDict[HeaderLimitedProtocol, None]] = (
    weakref.WeakKeyDictionary()
)


class HeadersTooLarge(Exception):
    """Raised in a parser callback: httptools turns it into a parser error, and uvicorn's answer to that
    (`send_400_response`, here a 431 with the JSON body) follows."""


class HeaderLimitedProtocol(HttpToolsProtocol):
    deadline_s: ClassVar[float] = HEADER_DEADLINE_S
    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES
    max_waiting: ClassVar[int] = MAX_WAITING_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------------ waiting for headers

    def _wait_for_headers(self) -> None:
        self._header_bytes = 0
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.deadline_s, self._deadline_passed)
            waiting = _waiting_by_server.setdefault(self.server_state, OrderedDict())
            waiting[self] = None
            while len(waiting) > self.max_waiting:
                oldest, _ = waiting.popitem(last=False)
                oldest._stop_waiting()
                oldest.transport.close()

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        waiting = _waiting_by_server.get(self.server_state)
        if waiting is not None:
            waiting.pop(self, None)

    def _deadline_passed(self) -> None:
        self._deadline = None
        self._stop_waiting()
        self._refuse(408, f"the request's headers did not arrive within {self.deadline_s:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        if self.transport.is_closing():
            return
        body = error_body(status, detail)
        head = (
            b"HTTP/1.1 " + _STATUS_LINES[status] + b"\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head + body)
        self.transport.close()

    # ----------------------------------------------------------------------------- uvicorn's calls

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        if self._header_bytes > self.max_header_bytes:
            self._stop_waiting()
            self._refuse(431, f"a request's line and headers are limited to {self.max_header_bytes} bytes")
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._wait_for_headers()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            raise HeadersTooLarge

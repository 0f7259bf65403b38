"""A size limit on request bodies, as a pure ASGI middleware: an oversized body is refused with 413 and the
JSON error body before it is buffered, and before anything is authenticated, so a 50 MB POST costs nothing.

A declared `Content-Length` over the limit is refused at once; a chunked body is counted as it is read and
cut off at the limit. Exempt paths are streams that bound themselves (ffmpeg's endless `-progress` upload, the
collector's ingest with its own batch limit). Not for rate limiting. FastAPI's own `max_body_size` is not
used: it answers a declared oversized body in plain text when the route does not read its body.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.http.errors import error_body

MAX_BODY_BYTES = 64 * 1024


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, exempt_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_body_bytes:
                    await self._refuse(send)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised where the route reads its body; the app's handler answers with ErrorBody.
                    raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counting_receive, send)

    @property
    def detail(self) -> str:
        return f"request bodies are limited to {self.max_body_bytes} bytes"

    async def _refuse(self, send: Send) -> None:
        body = error_body(413, self.detail)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""A size limit on every request body, as a pure ASGI middleware: an oversized body is refused with
413 and the JSON error body before it is buffered, so a 50 MB POST costs the agent nothing.

A declared `Content-Length` over the limit is refused at once; a chunked body is counted as it is
read and cut off at the limit. Streaming endpoints (ffmpeg's `-progress` upload, one endless POST)
are exempt: they parse as bytes arrive and bound their own buffers. Not for rate limiting.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
                    raise HTTPException(413, self._detail)
            return message

        await self.app(scope, counting_receive, send)

    @property
    def _detail(self) -> str:
        return f"request bodies are limited to {self.max_body_bytes} bytes"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "payload too large",
                "detail": self._detail,
            }
        ).encode()
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

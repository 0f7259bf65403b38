"""Bearer-token protection for every endpoint, as a pure ASGI middleware so streaming is untouched.

It covers everything, the OpenAPI document and /metrics included (Prometheus sends the token with
`authorization: {credentials: ...}`); the comparison is constant-time.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send


class BearerTokenMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        # RFC 9110 11.1: the scheme is case-insensitive ("bearer", "BEARER"), then one or more spaces.
        scheme, _, credentials = given.partition(b" ")
        if hmac.compare_digest(credentials.lstrip(b" "), self._token) and scheme.lower() == b"bearer":
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "unauthorized",
                "detail": "send the agent's api.token as 'Authorization: Bearer <token>'",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="streamhealth"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

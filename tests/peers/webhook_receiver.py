"""A real HTTP server on loopback that takes webhooks, as Slack, Discord or a team's tool would.

uvicorn serves a small Starlette app in this event loop. Each request is recorded (path, headers,
JSON body, monotonic arrival time); the answers can be scripted (e.g. two 500s, then a 429 with
Retry-After, then 204) to test retries against what real webhook services answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.peers.wait import async_wait_until, free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at_s: float


@dataclass
class WebhookReceiver:
    port: int
    received: list[Received] = field(default_factory=list)
    answers: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)

    def url(self, path: str = "/hook/T000/B000/s3cretw3bhookpath") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer_next(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.answers.append((status, headers or {}, body))

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.received.append(Received(request.url.path, dict(request.headers), body, time.monotonic()))
        status, headers, content = self.answers.popleft() if self.answers else (204, {}, b"")
        return Response(content, status_code=status, headers=headers)


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(free_port())
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await async_wait_until(lambda: server.started, 10, "the webhook receiver to listen")
        yield receiver
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)

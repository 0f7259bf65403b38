"""The ingest endpoint's work, and an ASGI fast path that serves it without FastAPI's layers.

Ingest is the one hot path (1,000 agents a second). Profiled, FastAPI's routing, middleware, dependency
solving and response classes cost more per batch than reading and storing it, so `IngestFastPath`
answers `POST /api/v1/ingest` directly and hands every other request to the FastAPI app, which still
declares the route (OpenAPI) and serves it the same way if the fast path is not in front.

Errors are the shared vocabulary's (agent/http/errors.py): the `error` from the one reason table, what a
`BatchError` calls the problem ("batch too large", "malformed batch") leading its detail.

A batch's body must arrive within `body_deadline_s` of its headers: a client trickling bytes holds a
connection and memory, so it gets a 408 and the connection is closed (uvicorn bounds no body time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.http.errors import error_body
from agent.models.shipping import AGENT_ID_HEADER, AGENT_NAME_HEADER, INGEST_PATH
from collector.auth import Authenticator
from collector.ingest import MAX_COMPRESSED_BYTES, BatchError, gunzip, parse_batch
from collector.metrics import CollectorMetrics
from collector.store import Store, StoreError

log = logging.getLogger(__name__)

Reply = tuple[int, bytes, list[tuple[bytes, bytes]]]
_JSON = [(b"content-type", b"application/json")]
BODY_DEADLINE_S = 20.0  # 16 MiB at 7 Mbit/s; an agent's batch (a few hundred KB at most) takes well under 1 s


class IngestHandler:
    def __init__(
        self, store: Store, auth: Authenticator, metrics: CollectorMetrics, body_deadline_s: float = BODY_DEADLINE_S
    ) -> None:
        self.store, self.auth, self.metrics = store, auth, metrics
        self.body_deadline_s = body_deadline_s

    async def handle(self, headers: Mapping[str, str], read_body: Callable[[int], Awaitable[bytes]]) -> Reply:
        """Authenticate, read (with a limit), validate, store, and only then acknowledge."""
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.body_deadline_s
        try:
            agent_id = headers.get(AGENT_ID_HEADER.lower(), "")
            if not agent_id:
                await self.auth.check(headers.get("authorization", ""), "agent")  # a 401 / 403 comes first
                raise HTTPException(400, f"the {AGENT_ID_HEADER} header is missing")
            token = await self.auth.agent(headers.get("authorization", ""), agent_id)
            agent_name = headers.get(AGENT_NAME_HEADER.lower()) or token.name
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        body = await read_body(MAX_COMPRESSED_BYTES)
                except TimeoutError:
                    raise BatchError(
                        408, "request timeout", f"the batch did not arrive within {self.body_deadline_s:g} s"
                    ) from None
                batch = parse_batch(gunzip(body, headers.get("content-encoding")))
                ack = await self.store.ingest(agent_id, agent_name[:200], token.name, batch)
            except BatchError as exc:
                self.metrics.rejected(exc.status)
                log.warning("refused a batch from %s (%s): %s", agent_name[:100], agent_id, exc.detail)
                raise HTTPException(exc.status, f"{exc.error}: {exc.detail}") from exc
        except HTTPException as exc:
            extra = [(name.lower().encode(), value.encode()) for name, value in (exc.headers or {}).items()]
            return exc.status_code, error_body(exc.status_code, str(exc.detail)), [*_JSON, *extra]
        except StoreError as exc:
            log.error("store: %s", exc)
            return 503, error_body(503, store_detail(exc)), [*_JSON, (b"retry-after", RETRY_AFTER_S.encode())]
        self.metrics.ingested(ack, time.perf_counter() - started)
        return 200, ack.model_dump_json().encode(), list(_JSON)


class IngestFastPath:
    def __init__(self, app: ASGIApp, handler: IngestHandler) -> None:
        self.app, self.handler = app, handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != INGEST_PATH:
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        body = BatchBody(receive, headers.get("content-length", ""))
        status, answer, extra = await self.handler.handle(headers, body.read)
        response_headers = [*extra, (b"content-length", str(len(answer)).encode())]
        if not body.complete:  # answered before the body ended (too slow, too large): the rest is not read
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": answer})


class BatchBody:
    """A batch's body read from the ASGI `receive`, refused with 413 past `limit` bytes (declared or counted)
    before more is buffered. One reader for the fast path and the FastAPI route that documents it."""

    def __init__(self, receive: Receive, declared_length: str) -> None:
        self._receive, self._declared = receive, declared_length
        self.complete = False

    async def read(self, limit: int) -> bytes:
        if self._declared.isdigit() and int(self._declared) > limit:
            raise BatchError(413, "batch too large", f"at most {limit} bytes per batch")
        chunks, size = [], 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise BatchError(400, "incomplete batch", "the agent went away before the batch was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BatchError(413, "batch too large", f"at most {limit} bytes per batch")
            chunks.append(chunk)
            if not message.get("more_body", False):
                self.complete = True
                return b"".join(chunks)


RETRY_AFTER_S = "1"


def store_detail(exc: StoreError) -> str:
    return f"database unavailable: {exc}"

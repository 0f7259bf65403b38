"""The collector's HTTP API: ingest for agents, the read API and events for people and dashboards.

Every 4xx and 5xx is an `ErrorBody`, in the vocabulary the agent's API speaks too (agent/http/): the same reason
table, the token as a dependency (401 with `WWW-Authenticate`, 403 for the other kind of token), the same body
limit on every route but ingest (which has its own, larger one), the same OpenAPI error declarations. Ingest answers only after the store committed the batch; a malformed
batch is refused whole (400 naming the line), a database in trouble is a 503 with Retry-After (the agent
retries), and the process keeps serving either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from sse_starlette import EventSourceResponse
from starlette.types import ASGIApp

from agent import __version__
from agent.http.auth import SCHEME_NAME
from agent.http.errors import error_response, install_error_handlers
from agent.http.limits import BodyLimitMiddleware
from agent.http.openapi import serve_documents
from agent.models import ErrorBody, IngestAck
from agent.models.shipping import AGENT_ID_HEADER, INGEST_PATH
from agent.notify.settings import NotifySettings
from collector.auth import AGENT_ID_PATTERN, Authenticator
from collector.fast_ingest import (
    BODY_DEADLINE_S,
    RETRY_AFTER_S,
    BatchBody,
    IngestFastPath,
    IngestHandler,
    store_detail,
)
from collector.fleet import FleetTracker
from collector.fleet_routes import add_fleet_routes
from collector.ingest import STATE_RANK, BatchError
from collector.metrics import CollectorMetrics
from collector.models import AgentView, MinuteView, SessionDetail, SessionView, StoredRecord, WorstState
from collector.notify import FleetNotifier, watching
from collector.params import AgentIdPath, AgentQuery, Rfc3339Time, SessionIdPath, TextQuery
from collector.prometheus import FleetExposition
from collector.store import SessionFilter, Store, StoreError
from collector.views import agent_view, minute_view, session_detail, session_view

log = logging.getLogger(__name__)

API = "/api/v1"
PRUNE_EVERY_S = 3600.0
EVENTS_POLL_S = 1.0
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 408, 409, 413, 415, 422, 503)
}


def create_app(
    store: Store,
    *,
    retention_days: float = 30.0,
    rollup_days: float = 400.0,
    events_poll_s: float = EVENTS_POLL_S,
    notify: NotifySettings | None = None,
    body_deadline_s: float = BODY_DEADLINE_S,
) -> ASGIApp:
    """The collector as an ASGI app: the FastAPI app, with the ingest fast path in front."""
    auth = Authenticator(store)
    metrics = CollectorMetrics(store)
    ingest_handler = IngestHandler(store, auth, metrics, body_deadline_s)
    tracker = FleetTracker(store)
    fleet_notifier = FleetNotifier(tracker, notify) if notify is not None and notify.webhooks else None
    metrics.registry.register(FleetExposition(tracker))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        pruner = asyncio.create_task(_prune_forever(store, retention_days, rollup_days), name="prune")
        try:
            async with watching(fleet_notifier):
                yield
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await store.close()

    app = FastAPI(
        title="streamhealth collector",
        version=__version__,
        description="Agents ship their health logs here (each record stored once); people and dashboards read them.",
        lifespan=lifespan,
        openapi_url=None,  # served by serve_documents, with our errors
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    serve_documents(app, forbidden_too=True)
    reader = [Depends(auth.reader)]

    @app.exception_handler(BatchError)
    async def batch_error(_: Request, exc: BatchError) -> JSONResponse:
        return error_response(exc.status, f"{exc.error}: {exc.detail}")

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store: %s", exc)
        return error_response(503, store_detail(exc), {"Retry-After": RETRY_AFTER_S})

    @app.get(f"{API}/status", summary="Liveness for load balancers (no token)")
    async def status() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post(
        INGEST_PATH,
        response_model=IngestAck,
        responses=ERRORS,
        summary="Store a batch of an agent's log lines (NDJSON, gzip); answered after the commit",
        openapi_extra={  # an agent token and its agent's id, checked by the handler itself
            "security": [{SCHEME_NAME: []}],
            "parameters": [
                {
                    "name": AGENT_ID_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": AGENT_ID_PATTERN},
                }
            ],
        },
    )
    async def ingest(request: Request) -> Response:
        # Normally answered by IngestFastPath before FastAPI; this route documents it (and serves it the
        # same way when the app is mounted without the fast path).
        body_reader = BatchBody(request.receive, request.headers.get("content-length", ""))
        status, body, headers = await ingest_handler.handle(request.headers, body_reader.read)
        response = Response(body, status_code=status, media_type="application/json")
        for name, value in headers:
            if name != b"content-type":
                response.headers[name.decode()] = value.decode()
        return response

    @app.get(
        f"{API}/agents",
        response_model=list[AgentView],
        responses=ERRORS,
        dependencies=reader,
        summary="Every agent seen",
    )
    async def agents() -> list[AgentView]:
        now = datetime.now(UTC)
        return [agent_view(row, now) for row in await store.agents()]

    @app.get(
        f"{API}/agents/{{agent_id}}/records",
        response_model=list[StoredRecord],
        responses=ERRORS,
        dependencies=reader,
        summary="An agent's records in seq order, exactly as written to its log",
    )
    async def records(
        agent_id: AgentIdPath,
        after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # a database integer
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[StoredRecord]:
        return [StoredRecord(seq=seq, line=line) for seq, line in await store.records(agent_id, after_seq, limit)]

    @app.get(
        f"{API}/agents/{{agent_id}}/minutes",
        response_model=list[MinuteView],
        responses=ERRORS,
        dependencies=reader,
        summary="An agent's per-minute rollups (ticks, worst state, means), kept longer than raw records",
    )
    async def minutes(
        agent_id: AgentIdPath,
        since: Annotated[Rfc3339Time | None, Query(description="RFC 3339 with a zone; default: 24 h ago")] = None,
        until: Annotated[Rfc3339Time | None, Query(description="RFC 3339 with a zone; default: now")] = None,
    ) -> list[MinuteView]:
        until = until or datetime.now(UTC)
        since = since or _day_before(until)
        return [minute_view(row) for row in await store.minutes(agent_id, since, until)]

    @app.get(
        f"{API}/sessions",
        response_model=list[SessionView],
        responses=ERRORS,
        dependencies=reader,
        summary="Stream sessions",
    )
    async def sessions(
        agent: AgentQuery = None,
        since: Annotated[
            Rfc3339Time | None, Query(description="Sessions still running at or after (RFC 3339 with a zone)")
        ] = None,
        until: Annotated[
            Rfc3339Time | None, Query(description="Sessions started at or before (RFC 3339 with a zone)")
        ] = None,
        platform: TextQuery = None,
        worst_state: Annotated[WorstState | None, Query(description="Sessions at least this bad")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[SessionView]:
        where = SessionFilter(
            agent, since, until, platform, STATE_RANK[worst_state] if worst_state else None, limit=limit
        )
        return [session_view(row) for row in await store.sessions(where)]

    @app.get(
        f"{API}/sessions/{{session_id}}",
        response_model=SessionDetail,
        responses=ERRORS,
        dependencies=reader,
        summary="One session: its summary, alert timeline and metric series",
    )
    async def session(
        session_id: SessionIdPath,
        agent: AgentQuery = None,
    ) -> SessionDetail:
        found = await store.sessions(SessionFilter(agent=agent, session_id=session_id, limit=2))
        if not found:
            raise HTTPException(404, f"no session {session_id!r}" + (f" of agent {agent!r}" if agent else ""))
        if len(found) > 1:
            raise HTTPException(409, f"several agents hold a session {session_id!r}: add ?agent=ID")
        row = found[0]
        alerts = await store.session_records(row.agent_id, session_id, ("alert",), 10_000)
        ticks = await store.session_records(row.agent_id, session_id, ("tick",), 24 * 3600)
        return session_detail(row, alerts, ticks)

    @app.get(
        f"{API}/events",
        responses=ERRORS,
        dependencies=reader,
        response_class=Response,  # an endless stream: the document declares no JSON body
        summary="Server-sent events: an `agent` event when one changes",
    )
    async def events() -> EventSourceResponse:
        return EventSourceResponse(_agent_changes(store, events_poll_s), ping=15)

    @app.get(
        "/metrics",
        responses=ERRORS,
        dependencies=reader,
        response_class=Response,
        summary="Prometheus metrics (read token)",
    )
    async def prometheus() -> Response:
        await metrics.refresh()
        await tracker.refresh()
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    add_fleet_routes(app, store, auth, tracker, poll_s=events_poll_s)
    # Every route but ingest, whose fast path has its own (larger) batch limit and answers before this runs.
    app.add_middleware(BodyLimitMiddleware, exempt_paths=frozenset({INGEST_PATH}))
    return IngestFastPath(app, ingest_handler)


def _day_before(until: datetime) -> datetime:
    """`minutes`' default `since`; a valid `until` in the first day of year 1 has no day before it to take."""
    try:
        return until - timedelta(hours=24)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


async def _agent_changes(store: Store, poll_s: float) -> AsyncIterator[dict[str, str]]:
    """Stateless: each collector polls the store, so an event reaches a reader whichever collector it uses."""
    seen: dict[str, tuple[Any, ...]] = {}
    while True:
        try:
            rows = await store.agents()
        except StoreError as exc:
            yield {"event": "error", "data": json.dumps({"error": "database unavailable", "detail": str(exc)})}
            rows = []
        now = datetime.now(UTC)
        for row in rows:
            view = agent_view(row, now)
            key = (view.last_seq, view.state, view.stream_state, len(view.active_alerts))
            if seen.get(row.agent_id) != key:
                seen[row.agent_id] = key
                yield {"event": "agent", "data": view.model_dump_json()}
        await asyncio.sleep(poll_s)


async def _prune_forever(store: Store, retention_days: float, rollup_days: float) -> None:
    while True:
        now = datetime.now(UTC)
        try:
            deleted = await store.prune(now - timedelta(days=retention_days), now - timedelta(days=rollup_days))
            if deleted:
                log.info("retention: deleted %d records older than %g days", deleted, retention_days)
        except StoreError as exc:
            log.warning("retention: %s; trying again later", exc)
        await asyncio.sleep(PRUNE_EVERY_S)

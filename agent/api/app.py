"""The agent's HTTP API (FastAPI): health, history, alerts, live events, Prometheus metrics, and the routers of
agent/api/*_routes.py. Routes only read what the agent already measured; none of them triggers a measurement.

What the agent and the collector share (errors as `ErrorBody`, the token dependency, the body limit, the
document's errors) is agent/http/; here is what only the agent serves.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse

from agent import __version__
from agent.api.bandwidth_routes import add_bandwidth_routes
from agent.api.encoder_routes import PROGRESS_PATH, add_encoder_routes
from agent.api.incident_routes import add_incident_routes
from agent.api.preflight_routes import add_preflight_routes
from agent.api.session_routes import add_session_routes
from agent.http.auth import token_check
from agent.http.errors import install_error_handlers
from agent.http.limits import BodyLimitMiddleware
from agent.http.openapi import error_responses, serve_documents
from agent.http.times import Rfc3339Time
from agent.logs.sessions import RunIndex
from agent.models import AlertsView, HealthSnapshot, HistorySeries, MetricNames, RunDetail, RunList, TickRecord
from agent.redact import redact
from agent.runtime import Agent

API_PREFIX = "/api/v1"
SSE_PING_S = 15


def _since_of(since: float | datetime | None) -> float | None:
    """`since` as Unix time (a time always has its zone: Rfc3339Time); a number that is not finite is a 422."""
    if isinstance(since, datetime):
        return since.timestamp()
    if since is not None and not math.isfinite(since):  # pydantic's allow_inf_nan cannot apply to a union
        raise HTTPException(
            422, "query.since: must be a finite number of Unix seconds or an RFC 3339 time with its zone"
        )
    return since


class _LazyExposition:
    """/metrics, with the Prometheus client loaded at the first scrape (0.7 MB that an agent nobody scrapes
    does not need); every scrape after that reads the latest snapshot, as before."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._render: Callable[[], bytes] | None = None
        self._content_type = ""

    def response(self) -> Response:
        if self._render is None:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            from agent.api.metrics import build_registry

            registry = build_registry(lambda: self.agent.snapshot)
            self._render, self._content_type = (lambda: generate_latest(registry)), CONTENT_TYPE_LATEST
        return Response(self._render(), media_type=self._content_type)


def create_app(agent: Agent) -> FastAPI:
    """The agent's API: every route, the OpenAPI document and its pages, the error handlers, the body limit
    (before anything else: an oversized body is refused unread) and, with api.token set, the token."""
    token = agent.settings.api.token
    dependencies = []
    if token is not None:
        check = token_check(
            token.get_secret_value(),
            description="The agent's api.token",
            detail="send the agent's api.token as 'Authorization: Bearer <token>'",
        )
        dependencies.append(Depends(check))
    app = FastAPI(
        title="streamhealth agent",
        version=__version__,
        description="Live stream health measured beside the encoder: snapshot, history, alerts, events, metrics.",
        dependencies=dependencies,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    serve_documents(app)
    for add_routes in (
        add_core_routes,
        add_bandwidth_routes,
        add_preflight_routes,
        add_session_routes,
        add_encoder_routes,
        add_incident_routes,
    ):
        add_routes(app.router, agent, API_PREFIX)
    app.add_middleware(BodyLimitMiddleware, exempt_paths=frozenset({f"{API_PREFIX}{PROGRESS_PATH}"}))
    return app


def add_core_routes(router: APIRouter, agent: Agent, prefix: str) -> None:
    exposition = _LazyExposition(agent)
    run_index = RunIndex(agent.settings.logs.dir)

    def current_run_id() -> str | None:
        return agent.log_writer.stem if agent.log_writer is not None else None

    @router.get(f"{prefix}/health", response_model=HealthSnapshot, summary="The latest health snapshot")
    async def health() -> Response:
        return Response(redact(agent.snapshot.model_dump_json()), media_type="application/json")

    @router.get(
        f"{prefix}/history",
        response_model=HistorySeries | MetricNames,
        responses=error_responses(404),
        summary="A metric's recent values; without `metric`, the metric names",
    )
    async def history(
        metric: Annotated[str | None, Query(description="e.g. system.cpu_usage_ratio")] = None,
        since: Annotated[
            float | Rfc3339Time | None,
            Query(description="Unix seconds or an RFC 3339 time with its zone, e.g. 2026-11-25T08:00:00Z"),
        ] = None,
        last_s: Annotated[
            float | None,
            Query(gt=0, allow_inf_nan=False, description="Only the last N seconds (by the monotonic clock)"),
        ] = None,
        max_points: Annotated[
            int | None, Query(ge=2, le=100_000, description="Thin to at most this many evenly spaced points")
        ] = None,
    ) -> Response | MetricNames:
        since_wall = _since_of(since)  # a bad `since` is a 422 whether or not `metric` is given
        if metric is None:
            return MetricNames(metrics=agent.history.metrics())
        series = agent.history.series(metric)
        if series is None:
            raise HTTPException(404, f"no metric named {metric!r}; GET {prefix}/history lists them")
        # "The last N seconds" is a window on the monotonic clock: a wall clock set back an hour must
        # not turn it into an hour and N seconds. The copy is cheap; the per-point work and the JSON
        # go to a thread so a full 6 h ring never holds up the tick.
        window = series.window(None if last_s is None else agent.clock() - last_s)
        name = metric

        def render() -> bytes:
            if since_wall is None and max_points is None:  # the whole window: cached JSON blocks
                return f'{{"metric":{json.dumps(name)},"points":[{window.points_json()}]}}'.encode()
            points = window.points(since_wall, max_points)
            return HistorySeries.model_construct(metric=name, points=points).model_dump_json().encode()

        return Response(await asyncio.to_thread(render), media_type="application/json")

    @router.get(f"{prefix}/alerts", response_model=AlertsView, summary="Active and recently cleared alerts")
    async def alerts() -> AlertsView:
        return AlertsView(active=agent.active_alerts(), recently_cleared=agent.recently_cleared_alerts())

    @router.get(
        f"{prefix}/events",
        response_class=Response,  # an endless stream: the document declares no body to check
        summary="Server-Sent Events: tick (snapshot), sample, alert, source_state, lagged",
    )
    async def events() -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, str]]:
            subscription = agent.bus.subscribe()
            # A new client gets the current state at once instead of waiting for the next tick.
            yield {"event": "tick", "data": redact(TickRecord(snapshot=agent.snapshot).model_dump_json())}
            async for event in agent.bus.stream(subscription):
                yield {"event": event.type, "data": event.data}

        return EventSourceResponse(stream(), ping=SSE_PING_S)

    @router.get(f"{prefix}/runs", response_model=RunList, summary="Past and current agent runs from the health logs")
    async def runs() -> RunList:
        return RunList(runs=await asyncio.to_thread(run_index.runs, current_run_id()))

    @router.get(
        f"{prefix}/runs/{{run_id}}",
        response_model=RunDetail,
        responses=error_responses(404),
        summary="One run with its alert timeline",
    )
    async def run(run_id: str) -> RunDetail:
        detail = await asyncio.to_thread(run_index.run, run_id, current_run_id())
        if detail is None:
            raise HTTPException(404, f"no run {run_id!r} in the health logs; GET {prefix}/runs lists them")
        return detail

    @router.get("/metrics", response_class=Response, summary="Prometheus text exposition")
    async def metrics() -> Response:
        return exposition.response()

"""The agent's HTTP API (plain Starlette): health, history, alerts, live events, Prometheus metrics.

Every endpoint is one entry of the route table (`api_endpoints`), from which agent/api/routing.py serves
and agent/api/openapi.py writes /openapi.json. Routes only read what the agent already measured; none of
them triggers a measurement. Errors are JSON: `{"error": ..., "detail": ...}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response

from agent import __version__
from agent.api.auth import BearerTokenMiddleware
from agent.api.bandwidth_routes import bandwidth_endpoints
from agent.api.encoder_routes import encoder_endpoints
from agent.api.errors import http_error
from agent.api.incident_routes import incident_endpoints
from agent.api.limits import BodyLimitMiddleware
from agent.api.openapi import DocumentRoutes
from agent.api.preflight_routes import preflight_endpoints
from agent.api.routing import Call, Endpoint, NoParams, routes_of
from agent.api.session_routes import session_endpoints
from agent.logs.sessions import RunIndex
from agent.models import AlertsView, HealthSnapshot, HistorySeries, MetricNames, RunDetail, RunList, TickRecord
from agent.redact import redact
from agent.runtime import Agent

API_PREFIX = "/api/v1"
SSE_PING_S = 15
INFO = {
    "title": "streamhealth agent",
    "version": __version__,
    "description": "Live stream health measured beside the encoder: snapshot, history, alerts, events, metrics.",
}


class HistoryParams(BaseModel):
    metric: str | None = Field(None, description="e.g. system.cpu_usage_ratio")
    since: float | datetime | None = Field(
        None, description="Unix seconds or an ISO 8601 time, e.g. 2026-11-25T08:00:00Z"
    )
    last_s: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Only the last N seconds (by the monotonic clock)"
    )
    max_points: int | None = Field(None, ge=2, le=100_000, description="Thin to at most this many evenly spaced points")


class RunParams(BaseModel):
    run_id: str


def _since_of(since: float | datetime | None) -> float | None:
    """`since` as Unix time (a time without a zone is UTC); a number that is not finite is a 422."""
    if isinstance(since, datetime):
        return (since if since.tzinfo is not None else since.replace(tzinfo=UTC)).timestamp()
    if since is not None and not math.isfinite(since):  # pydantic's allow_inf_nan cannot apply to a union
        raise HTTPException(422, "query.since: must be a finite number of Unix seconds or an ISO 8601 time")
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


def create_app(agent: Agent) -> Starlette:
    """The agent's API: every route, the OpenAPI document and its pages, the error handler, the body limit
    and the token check."""
    endpoints = api_endpoints(agent)
    token = agent.settings.api.token
    documents = DocumentRoutes(endpoints, info=INFO, token_required=token is not None)
    middleware = [] if token is None else [Middleware(BearerTokenMiddleware, token=token.get_secret_value())]
    middleware.append(Middleware(BodyLimitMiddleware, exempt_paths=frozenset({f"{API_PREFIX}/ffmpeg/progress"})))
    return Starlette(
        routes=[*documents.routes, *routes_of(endpoints)],
        middleware=middleware,  # the first is the outermost: no token, nothing else is looked at
        exception_handlers={HTTPException: http_error},
    )


def api_endpoints(agent: Agent) -> list[Endpoint[Any, Any]]:
    """The route table: every endpoint of the API, in the order the document lists them."""
    return [
        *_core_endpoints(agent),
        *bandwidth_endpoints(agent, API_PREFIX),
        *preflight_endpoints(agent, API_PREFIX),
        *session_endpoints(agent, API_PREFIX),
        *encoder_endpoints(agent, API_PREFIX),
        *incident_endpoints(agent, API_PREFIX),
    ]


def _core_endpoints(agent: Agent) -> list[Endpoint[Any, Any]]:
    exposition = _LazyExposition(agent)
    run_index = RunIndex(agent.settings.logs.dir)

    def current_run_id() -> str | None:
        return agent.log_writer.stem if agent.log_writer is not None else None

    async def health(_: Call[NoParams, None]) -> Response:
        return Response(redact(agent.snapshot.model_dump_json()), media_type="application/json")

    async def history(call: Call[HistoryParams, None]) -> Response | MetricNames:
        params = call.params
        since_wall = _since_of(params.since)  # a bad `since` is a 422 whether or not `metric` is given
        metric, max_points = params.metric, params.max_points
        if metric is None:
            return MetricNames(metrics=agent.history.metrics())
        series = agent.history.series(metric)
        if series is None:
            raise HTTPException(404, f"no metric named {metric!r}; GET {API_PREFIX}/history lists them")
        # "The last N seconds" is a window on the monotonic clock: a wall clock set back an hour must
        # not turn it into an hour and N seconds. The copy is cheap; the per-point work and the JSON
        # go to a thread so a full 6 h ring never holds up the tick.
        window = series.window(None if params.last_s is None else agent.clock() - params.last_s)

        def render() -> bytes:
            if since_wall is None and max_points is None:  # the whole window: cached JSON blocks
                return f'{{"metric":{json.dumps(metric)},"points":[{window.points_json()}]}}'.encode()
            points = window.points(since_wall, max_points)
            return HistorySeries.model_construct(metric=metric, points=points).model_dump_json().encode()

        return Response(await asyncio.to_thread(render), media_type="application/json")

    async def alerts(_: Call[NoParams, None]) -> AlertsView:
        return AlertsView(active=agent.active_alerts(), recently_cleared=agent.recently_cleared_alerts())

    async def events(_: Call[NoParams, None]) -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, str]]:
            subscription = agent.bus.subscribe()
            # A new client gets the current state at once instead of waiting for the next tick.
            yield {"event": "tick", "data": redact(TickRecord(snapshot=agent.snapshot).model_dump_json())}
            async for event in agent.bus.stream(subscription):
                yield {"event": event.type, "data": event.data}

        return EventSourceResponse(stream(), ping=SSE_PING_S)

    async def runs(_: Call[NoParams, None]) -> RunList:
        return RunList(runs=await asyncio.to_thread(run_index.runs, current_run_id()))

    async def run(call: Call[RunParams, None]) -> RunDetail:
        run_id = call.params.run_id
        detail = await asyncio.to_thread(run_index.run, run_id, current_run_id())
        if detail is None:
            raise HTTPException(404, f"no run {run_id!r} in the health logs; GET {API_PREFIX}/runs lists them")
        return detail

    async def metrics(_: Call[NoParams, None]) -> Response:
        return exposition.response()

    return [
        Endpoint(
            method="GET",
            path=f"{API_PREFIX}/health",
            handler=health,
            summary="The latest health snapshot",
            returns=HealthSnapshot,
        ),
        Endpoint(
            method="GET",
            path=f"{API_PREFIX}/history",
            handler=history,
            summary="A metric's recent values; without `metric`, the metric names",
            params=HistoryParams,
            returns=HistorySeries | MetricNames,
            errors={404: None},
        ),
        Endpoint(
            method="GET",
            path=f"{API_PREFIX}/alerts",
            handler=alerts,
            summary="Active and recently cleared alerts",
            returns=AlertsView,
        ),
        Endpoint(
            method="GET",
            path=f"{API_PREFIX}/events",
            handler=events,
            summary="Server-Sent Events: tick (snapshot), sample, alert, source_state, lagged",
        ),
        Endpoint(
            method="GET",
            path=f"{API_PREFIX}/runs",
            handler=runs,
            summary="Past and current agent runs from the health logs",
            returns=RunList,
        ),
        Endpoint(
            method="GET",
            path=f"{API_PREFIX}/runs/{{run_id}}",
            handler=run,
            summary="One run with its alert timeline",
            params=RunParams,
            returns=RunDetail,
            errors={404: None},
        ),
        Endpoint(method="GET", path="/metrics", handler=metrics, summary="Prometheus text exposition"),
    ]

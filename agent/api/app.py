"""The agent's HTTP API (FastAPI): health, history, alerts, live events, Prometheus metrics.

Routes only read what the agent already measured; none of them triggers a measurement.
Errors are JSON: `{"error": ..., "detail": ...}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import __version__
from agent.api.auth import BearerTokenMiddleware
from agent.api.bandwidth_routes import add_bandwidth_routes
from agent.api.encoder_routes import create_encoder_router
from agent.api.metrics import build_registry
from agent.api.preflight_routes import add_preflight_routes
from agent.api.session_routes import add_session_routes
from agent.logs.sessions import RunIndex
from agent.models import Alert, ErrorBody, HealthSnapshot, HistorySeries, RunDetail, RunList, TickRecord
from agent.redact import redact
from agent.runtime import Agent

API_PREFIX = "/api/v1"
SSE_PING_S = 15


class AlertsView(BaseModel):
    active: list[Alert]
    recently_cleared: list[Alert]


class MetricNames(BaseModel):
    metrics: list[str]


def _parse_since(since: str | None) -> float | None:
    if since is None:
        return None
    try:
        return float(since)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(since).timestamp()
    except ValueError:
        raise HTTPException(400, "since must be Unix seconds or an ISO 8601 time, e.g. 2026-11-25T08:00:00Z") from None


def create_app(agent: Agent) -> FastAPI:
    app = FastAPI(
        title="streamhealth agent",
        version=__version__,
        description="Live stream health measured beside the encoder: snapshot, history, alerts, events, metrics.",
    )
    registry = build_registry(lambda: agent.snapshot)
    errors: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = ErrorBody(error=_reason(exc.status_code), detail=redact(str(exc.detail)))
        return JSONResponse(body.model_dump(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return JSONResponse(ErrorBody(error="bad request", detail=redact(problems)).model_dump(), status_code=422)

    @app.get(f"{API_PREFIX}/health", response_model=HealthSnapshot, summary="The latest health snapshot")
    async def health() -> Response:
        return Response(redact(agent.snapshot.model_dump_json()), media_type="application/json")

    @app.get(
        f"{API_PREFIX}/history",
        response_model=HistorySeries | MetricNames,
        responses=errors,
        summary="A metric's recent values; without `metric`, the metric names",
    )
    async def history(
        metric: Annotated[str | None, Query(description="e.g. system.cpu_usage_ratio")] = None,
        since: Annotated[str | None, Query(description="Unix seconds or ISO 8601 time")] = None,
        last_s: Annotated[
            float | None, Query(gt=0, description="Only the last N seconds (by the monotonic clock)")
        ] = None,
        max_points: Annotated[
            int | None, Query(ge=2, le=100_000, description="Thin to at most this many evenly spaced points")
        ] = None,
    ) -> HistorySeries | MetricNames | Response:
        if metric is None:
            return MetricNames(metrics=agent.history.metrics())
        series = agent.history.series(metric)
        if series is None:
            raise HTTPException(404, f"no metric named {metric!r}; GET {API_PREFIX}/history lists them")
        since_wall = _parse_since(since)
        # "The last N seconds" is a window on the monotonic clock: a wall clock set back an hour must
        # not turn it into an hour and N seconds. The copy is cheap; the per-point work and the JSON
        # go to a thread so a full 6 h ring never holds up the tick.
        window = series.window(None if last_s is None else agent.clock() - last_s)

        def render() -> bytes:
            if since_wall is None and max_points is None:  # the whole window: cached JSON blocks
                return f'{{"metric":{json.dumps(metric)},"points":[{window.points_json()}]}}'.encode()
            points = window.points(since_wall, max_points)
            return HistorySeries.model_construct(metric=metric, points=points).model_dump_json().encode()

        return Response(await asyncio.to_thread(render), media_type="application/json")

    @app.get(f"{API_PREFIX}/alerts", response_model=AlertsView, summary="Active and recently cleared alerts")
    async def alerts() -> AlertsView:
        return AlertsView(active=agent.active_alerts(), recently_cleared=agent.recently_cleared_alerts())

    @app.get(
        f"{API_PREFIX}/events",
        summary="Server-Sent Events: tick (snapshot), sample, alert, source_state, lagged",
        response_class=EventSourceResponse,
    )
    async def events() -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, str]]:
            subscription = agent.bus.subscribe()
            # A new client gets the current state at once instead of waiting for the next tick.
            yield {"event": "tick", "data": redact(TickRecord(snapshot=agent.snapshot).model_dump_json())}
            async for event in agent.bus.stream(subscription):
                yield {"event": event.type, "data": event.data}

        return EventSourceResponse(stream(), ping=SSE_PING_S)

    run_index = RunIndex(agent.settings.logs.dir)

    def current_run_id() -> str | None:
        return agent.log_writer.stem if agent.log_writer is not None else None

    @app.get(f"{API_PREFIX}/runs", response_model=RunList, summary="Past and current agent runs from the health logs")
    async def runs() -> RunList:
        return RunList(runs=await asyncio.to_thread(run_index.runs, current_run_id()))

    @app.get(
        f"{API_PREFIX}/runs/{{run_id}}",
        response_model=RunDetail,
        responses=errors,
        summary="One run with its alert timeline",
    )
    async def run(run_id: str) -> RunDetail:
        detail = await asyncio.to_thread(run_index.run, run_id, current_run_id())
        if detail is None:
            raise HTTPException(404, f"no run {run_id!r} in the health logs; GET {API_PREFIX}/runs lists them")
        return detail

    @app.get("/metrics", summary="Prometheus text exposition", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    add_bandwidth_routes(app, agent, API_PREFIX)
    add_preflight_routes(app, agent, API_PREFIX)
    add_session_routes(app, agent, API_PREFIX)
    app.include_router(create_encoder_router(agent, API_PREFIX))

    token = agent.settings.api.token
    if token is not None:
        app.add_middleware(BearerTokenMiddleware, token=token.get_secret_value())
    return app


def _reason(status: int) -> str:
    return {400: "bad request", 401: "unauthorized", 404: "not found", 405: "method not allowed", 409: "conflict"}.get(
        status, "error"
    )

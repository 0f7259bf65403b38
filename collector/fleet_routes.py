"""The collector's fleet routes: the fleet view, Prometheus discovery, and each agent's API as forwarded.

`/api/v1/agents/{id}/health|events|alerts|history` answer like the agent's own `/api/v1/health|events|
alerts|history`, from the records it shipped, so the TUI's Live screen renders an agent through the
collector with the same client and tiles. Read token everywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse

from agent.http.openapi import error_responses
from agent.models import Alert, AlertRecord, HealthSnapshot, HistorySeries
from collector.auth import Authenticator
from collector.fleet import FleetTracker
from collector.models import FleetView
from collector.params import AgentIdPath
from collector.prometheus import target_groups
from collector.store import Store, StoreError

API = "/api/v1"
FORWARD_POLL_S = 1.0
HISTORY_MAX_RECORDS = 2000
NOT_FOUND = error_responses(404, s404="No such agent, or no tick from it yet (the detail says which)")
FORWARDED_TYPES = {"tick": "tick", "alert": "alert", "source_state": "source_state", "job_finished": "job_finished"}


class AlertsView(BaseModel):
    active: list[Alert]
    recently_cleared: list[Alert]


def add_fleet_routes(
    app: FastAPI, store: Store, auth: Authenticator, tracker: FleetTracker, *, poll_s: float = FORWARD_POLL_S
) -> None:
    reader = [Depends(auth.reader)]

    @app.get(
        f"{API}/fleet",
        response_model=FleetView,
        dependencies=reader,
        summary="Every agent in one row each, worst first",
    )
    async def fleet() -> FleetView:
        await tracker.refresh()
        return tracker.view()

    @app.get(
        f"{API}/prometheus/targets",
        dependencies=reader,
        summary="Prometheus HTTP service discovery: each agent's /metrics address, labelled with its name",
    )
    async def prometheus_targets(
        include_loopback: Annotated[
            bool, Query(description="Also list agents bound to loopback (a Prometheus on the same machine)")
        ] = False,
    ) -> JSONResponse:
        await tracker.refresh()
        return JSONResponse(target_groups(tracker, include_loopback=include_loopback))

    async def latest(agent_id: str) -> HealthSnapshot:
        await tracker.refresh()
        snapshot = tracker.latest(agent_id)
        if snapshot is None:
            known = agent_id in tracker.followed
            raise HTTPException(404, f"no tick from agent {agent_id!r} yet" if known else f"no agent {agent_id!r}")
        return snapshot

    @app.get(
        f"{API}/agents/{{agent_id}}/health",
        responses=NOT_FOUND,
        response_model=HealthSnapshot,
        dependencies=reader,
        summary="Its latest snapshot",
    )
    async def agent_health(agent_id: AgentIdPath) -> HealthSnapshot:
        return await latest(agent_id)

    @app.get(
        f"{API}/agents/{{agent_id}}/events",
        responses=NOT_FOUND,
        dependencies=reader,
        response_class=Response,  # an endless stream: the document declares no JSON body
        summary="Its records as the agent's own event stream (SSE)",
    )
    async def agent_events(agent_id: AgentIdPath) -> EventSourceResponse:
        first = await latest(agent_id)
        start_seq = tracker.followed[agent_id].seq
        return EventSourceResponse(_forward(store, agent_id, first, start_seq, poll_s), ping=15)

    @app.get(
        f"{API}/agents/{{agent_id}}/alerts",
        responses=NOT_FOUND,
        response_model=AlertsView,
        dependencies=reader,
        summary="Its active and cleared alerts",
    )
    async def agent_alerts(agent_id: AgentIdPath) -> AlertsView:
        snapshot = await latest(agent_id)
        cleared: list[Alert] = []
        for _, record in await _recent(store, tracker, agent_id, 500):
            if record.get("type") == "alert":
                try:
                    change = AlertRecord.model_validate(record).change
                except ValidationError:
                    continue
                if change.change == "cleared":
                    cleared.append(change.alert)
        return AlertsView(active=snapshot.alerts, recently_cleared=cleared[::-1][:50])

    @app.get(
        f"{API}/agents/{{agent_id}}/history",
        responses=NOT_FOUND,
        response_model=HistorySeries,
        dependencies=reader,
        summary="One metric from its ticks",
    )
    async def agent_history(
        agent_id: AgentIdPath,
        metric: Annotated[str, Query(pattern=r"^[a-z_]+\.[a-z0-9_]+$", description="e.g. system.cpu_usage_ratio")],
        last_s: Annotated[float, Query(gt=0, le=3600)] = 300,
    ) -> HistorySeries:
        await latest(agent_id)
        source, _, name = metric.partition(".")
        points: list[tuple[float, float]] = []
        recent = await _recent(store, tracker, agent_id, min(HISTORY_MAX_RECORDS, int(last_s * 2) + 50))
        newest = None
        for _, record in reversed(recent):
            snapshot = record.get("snapshot") if record.get("type") == "tick" else None
            if not isinstance(snapshot, dict):
                continue
            try:
                at = _epoch(snapshot["taken_at"])
            except (KeyError, ValueError, TypeError):
                continue
            newest = newest if newest is not None else at
            if at < newest - last_s:
                break
            sample = snapshot.get(source)
            value = sample.get(name) if isinstance(sample, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                points.append((at, float(value)))
        if not points:
            raise HTTPException(404, f"no {metric!r} in the agent's recent ticks")
        return HistorySeries(metric=metric, points=points[::-1])


async def _recent(store: Store, tracker: FleetTracker, agent_id: str, count: int) -> list[tuple[int, dict[str, Any]]]:
    last_seq = tracker.followed[agent_id].seq
    found: list[tuple[int, dict[str, Any]]] = []
    for seq, line in await store.records(agent_id, max(0, last_seq - count), count):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append((seq, record))
    return found


def _epoch(text: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(text)).timestamp()


async def _forward(
    store: Store, agent_id: str, first: HealthSnapshot, after_seq: int, poll_s: float
) -> AsyncIterator[dict[str, str]]:
    """The latest tick at once, then every new record of the types the agent's stream carries, in seq order."""
    yield {"event": "tick", "data": json.dumps({"type": "tick", "snapshot": first.model_dump(mode="json")})}
    while True:
        await asyncio.sleep(poll_s)
        try:
            records = await store.records(agent_id, after_seq, 1000)
        except StoreError as exc:
            yield {"event": "error", "data": json.dumps({"error": "database unavailable", "detail": str(exc)})}
            continue
        for seq, line in records:
            after_seq = seq
            try:
                kind = json.loads(line).get("type")
            except (ValueError, AttributeError):
                continue
            event = FORWARDED_TYPES.get(kind) if isinstance(kind, str) else None
            if event is not None:
                yield {"event": event, "data": line}

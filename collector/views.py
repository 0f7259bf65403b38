"""Rows of the store turned into the read API's models (agent state, sessions and their series)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from collector.ingest import RANK_STATE, MinuteRollup
from collector.models import AgentView, AlertBrief, MinuteView, SeriesPoint, SessionDetail, SessionView, SnapshotBrief
from collector.store import AgentRow, SessionRow

OFFLINE_AFTER_S = 30.0
SERIES_PATHS = {
    "obs.output_bitrate_bps": ("obs", "output_bitrate_bps"),
    "system.cpu_usage_ratio": ("system", "cpu_usage_ratio"),
    "network.rtt_ms": ("network", "rtt_ms"),
}


def agent_view(row: AgentRow, now: datetime | None = None) -> AgentView:
    now = now or datetime.now(UTC)
    latest = _brief(row.latest_json)
    alerts = [AlertBrief.model_validate(alert) for alert in json.loads(row.alerts_json or "[]")]
    silent = (now - row.last_seen).total_seconds() > OFFLINE_AFTER_S
    state = "offline" if silent else (latest.overall if latest and latest.overall in RANK_STATE.values() else "unknown")
    stream_state = "unknown"
    if latest is not None and latest.streaming is not None and not silent:
        stream_state = "live" if latest.streaming else "not_live"
    return AgentView(
        agent_id=row.agent_id,
        name=row.name,
        token_name=row.token_name,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        state=state,
        stream_state=stream_state,
        records=row.records,
        last_seq=row.last_seq,
        latest=latest,
        active_alerts=[] if silent else alerts,
    )


def _brief(latest_json: str | None) -> SnapshotBrief | None:
    if latest_json is None:
        return None
    try:
        return SnapshotBrief.model_validate_json(latest_json)
    except ValidationError:
        return None


def session_view(row: SessionRow) -> SessionView:
    return SessionView(**_session_fields(row))


def _session_fields(row: SessionRow) -> dict[str, Any]:
    return {
        "session_id": row.session_id,
        "agent_id": row.agent_id,
        "agent_name": row.agent_name,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "platform": row.platform,
        "worst_state": RANK_STATE.get(row.worst_rank) if row.worst_rank is not None else None,
        "records": row.records,
        "summary": json.loads(row.summary_line) if row.summary_line else None,
    }


def session_detail(row: SessionRow, alert_lines: list[str], tick_lines: list[str]) -> SessionDetail:
    series: dict[str, list[SeriesPoint]] = {name: [] for name in SERIES_PATHS}
    for line in tick_lines:
        snapshot = json.loads(line).get("snapshot") or {}
        taken_at = snapshot.get("taken_at")
        if taken_at is None:
            continue
        for name, path in SERIES_PATHS.items():
            node: Any = snapshot
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, int | float) and not isinstance(node, bool):
                series[name].append(SeriesPoint(at=taken_at, value=float(node)))
    return SessionDetail(
        **_session_fields(row),
        alerts=[json.loads(line) for line in alert_lines],
        series={name: points for name, points in series.items() if points},
    )


def minute_view(row: MinuteRollup) -> MinuteView:
    return MinuteView(
        minute=row.minute,
        ticks=row.ticks,
        worst_state=RANK_STATE.get(row.worst_rank) if row.worst_rank is not None else None,
        cpu_usage_ratio_mean=row.cpu_sum / row.cpu_count if row.cpu_count else None,
        output_bitrate_bps_mean=row.bitrate_sum / row.bitrate_count if row.bitrate_count else None,
    )

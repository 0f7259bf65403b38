"""Full tick lines as an agent ships them (the TUI tests' snapshots, stamped with a seq and a time)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from agent.models import Alert, HealthSnapshot, TickRecord, utc_now
from tests.tui import data


def fleet_snapshot(
    at: datetime,
    *,
    api_url: str | None = "http://10.1.2.3:8765",
    dropped_network_total: int = 312,
    alerts: list[Alert] | None = None,
    streaming: bool = True,
    jobs_running: list[str] | None = None,
    cpu: float = 0.46,
) -> HealthSnapshot:
    base = data.snapshot(alerts=alerts, streaming=streaming, cpu=cpu)
    assert base.obs is not None
    agent = base.agent.model_copy(update={"api_url": api_url, "jobs_running": jobs_running or []})
    obs = base.obs.model_copy(update={"taken_at": at, "frames_dropped_network_total": dropped_network_total})
    return base.model_copy(update={"taken_at": at, "agent": agent, "obs": obs})


def tick_line(seq: int, snapshot: HealthSnapshot, session_id: str | None = None) -> str:
    record = json.loads(TickRecord(snapshot=snapshot).model_dump_json())
    record = {"seq": seq, **record}
    if session_id is not None:
        record["session_id"] = session_id
    return json.dumps(record, separators=(",", ":"))


def recent_ticks(count: int, *, first_seq: int = 1, step_drops: int = 2, **kwargs: object) -> list[str]:
    """`count` ticks one second apart ending now, the network-drop counter rising by `step_drops` each."""
    now = utc_now()
    return [
        tick_line(
            first_seq + i,
            fleet_snapshot(
                now - timedelta(seconds=count - 1 - i),
                dropped_network_total=1000 + i * step_drops,
                **kwargs,  # type: ignore[arg-type]
            ),
        )
        for i in range(count)
    ]

"""The collector's read API: agents, sessions and records as the collector serves them.

Records themselves are the agent's contract (agent/models); these models only add what the collector
knows about them (when an agent was last seen, how many of its records it holds, sessions found in them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from agent.models import Alert, Contract

AgentState = Literal["ok", "warning", "critical", "offline", "unknown"]
WorstState = Literal["ok", "warning", "critical"]


class AlertBrief(Contract):
    id: str
    kind: str
    severity: str
    message: str
    since: datetime | None = None


class SnapshotBrief(Contract):
    """The agent's latest tick, in a few figures (the full tick is in its records)."""

    taken_at: datetime | None = None
    overall: str | None = None
    platform: str | None = None
    streaming: bool | None = Field(None, description="OBS says it is streaming (None: OBS not measured).")
    output_bitrate_bps: float | None = None
    cpu_ratio: float | None = None


class AgentView(Contract):
    agent_id: str
    name: str = Field(description="The agent's ship.agent_name (default: its host name).")
    token_name: str = Field(description="The name its token was created with.")
    first_seen: datetime
    last_seen: datetime = Field(description="When the collector last committed a batch from it.")
    state: AgentState = Field(description="Its latest overall health, or offline when silent for 30 s.")
    stream_state: Literal["live", "not_live", "unknown"]
    records: int = Field(description="Records stored for it.")
    last_seq: int | None
    latest: SnapshotBrief | None = None
    active_alerts: list[AlertBrief] = Field(default_factory=list)


class SessionView(Contract):
    session_id: str
    agent_id: str
    agent_name: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    platform: str | None = None
    worst_state: WorstState | None = None
    records: int
    summary: dict[str, Any] | None = Field(None, description="The agent's session summary record, once it ended.")


class SeriesPoint(Contract):
    at: datetime
    value: float


class SessionDetail(SessionView):
    alerts: list[dict[str, Any]] = Field(description="The session's alert records, oldest first.")
    series: dict[str, list[SeriesPoint]] = Field(description="Metric series from the session's ticks.")


class StoredRecord(Contract):
    seq: int
    line: str = Field(description="The record exactly as the agent wrote it to its log.")


class CreatedToken(Contract):
    name: str
    kind: Literal["agent", "reader"]
    token: str


class MinuteView(Contract):
    """One agent-minute, rolled up from its ticks; kept longer than the raw records (--rollup-days)."""

    minute: datetime
    ticks: int
    worst_state: WorstState | None = None
    cpu_usage_ratio_mean: float | None = None
    output_bitrate_bps_mean: float | None = None


# --- the fleet view (collector/fleet.py) -------------------------------------------------------------

FleetStreamState = Literal["lost_contact", "degraded", "preflight", "live", "offline"]


class FleetRow(Contract):
    """One agent as a technician watching many streams needs it, from its latest full snapshot."""

    agent_id: str
    name: str = Field(description="Its name, suffixed with its id's start when two agents share a name.")
    stream_state: FleetStreamState = Field(
        description="lost_contact: silent for 3 reporting intervals; degraded: live with alerts; preflight: a "
        "go / no-go check running; live; offline: reporting, not streaming (or the agent stopped cleanly)."
    )
    was_live: bool = Field(False, description="Live in its latest snapshot (still true once contact is lost).")
    agent_stopped: bool = Field(False, description="Its last run ended cleanly (run_stopped).")
    overall: str | None = None
    platform: str | None = None
    version: str | None = None
    live_s: float | None = Field(None, description="Seconds since the stream session started.")
    output_bitrate_bps: float | None = None
    target_bitrate_bps: float | None = Field(None, description="The encoder's configured video + audio bitrate.")
    dropped_last_minute: dict[str, int] = Field(
        default_factory=dict, description="Frames dropped in the last minute by cause: network, encoding, ..."
    )
    rtt_ms: float | None = None
    loss_ratio: float | None = None
    cpu_ratio: float | None = None
    worst_alert: AlertBrief | None = None
    alerts_active: int = 0
    lines_waiting: int | None = Field(None, description="Its shipping backlog, as of its latest snapshot.")
    api_url: str | None = None
    taken_at: datetime | None = Field(None, description="When its latest snapshot was taken (agent clock).")
    last_seen: datetime
    silent_s: float = Field(description="Seconds since its last batch reached the collector.")
    interval_s: float = Field(description="How often it usually reports (its batches' spacing, at least 1 s).")


class FleetView(Contract):
    taken_at: datetime
    agents: list[FleetRow] = Field(description="Sorted by trouble, then name.")
    alerts: list[Alert] = Field(
        default_factory=list, description="Fleet alerts (the agent's Alert model): lost contact, one per agent."
    )

"""The collector's read API: agents, sessions and records as the collector serves them.

Records themselves are the agent's contract (agent/models); these models only add what the collector
knows about them (when an agent was last seen, how many of its records it holds, sessions found in them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from agent.models import Contract

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

"""Summaries of past agent runs, read back from the health logs: the History screen's contract.

A run is one agent process (one log file and its `.partN` continuations). These models are what
`GET /api/v1/runs` and `GET /api/v1/runs/{run_id}` serve; they are derived, never written to a log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.alerts import OverallState, Severity
from agent.models.base import Contract


class AlertTimelineEntry(Contract):
    """One alert change of a run, flattened for a timeline (backup plans stay in the log)."""

    at: datetime
    change: Literal["raised", "updated", "cleared"]
    alert_id: str
    kind: str
    severity: Severity
    message: str


class RunSummary(Contract):
    run_id: str = Field(description="The log file's stem, e.g. streamhealth-20261125T080000Z-1234.")
    started_at: datetime | None = None
    stopped_at: datetime | None = Field(None, description="None while the run goes on, or if it ended abruptly.")
    stop_reason: str | None = None
    last_record_at: datetime | None = Field(None, description="Time of the newest record read.")
    duration_s: float | None = Field(None, description="Start to stop, or to the last record when not stopped.")
    current: bool = Field(False, description="This is the run of the agent answering.")
    platform: str | None = None
    agent_version: str | None = None
    worst_state: OverallState = "ok"
    ticks: int = 0
    alerts_raised: int = 0
    critical_raised: int = 0
    files: int = 1
    unreadable_lines: int = 0


class RunDetail(RunSummary):
    alerts: list[AlertTimelineEntry] = Field(default_factory=list, description="Alert changes, oldest first.")
    alerts_truncated: bool = Field(False, description="True when only the newest changes are kept.")


class RunList(Contract):
    runs: list[RunSummary] = Field(description="Newest first.")

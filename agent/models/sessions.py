"""Stream sessions: one live stream, from going live to stopping, and the summary written at its end.

A *session* is one live stream; a *run* (agent/models/runs.py) is one agent process. A run may hold
several sessions, and records written while a session is live carry its `session_id`. These records go
into the health log like every other record (and so to a collector); `SessionSummary` is also what
`streamhealth logs summary` and `GET /api/v1/sessions/{id}` show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.alerts import OverallState, Severity
from agent.models.base import SCHEMA_VERSION, Contract
from agent.models.runs import AlertTimelineEntry

LiveOrigin = Literal["obs", "ffmpeg", "relay"]
SessionEndReason = Literal["stream_stopped", "agent_stopped", "agent_stopped_unexpectedly"]
SessionStatus = Literal["live", "ended"]


class SessionStarted(Contract):
    type: Literal["session_started"] = "session_started"
    schema_version: int = SCHEMA_VERSION
    session_id: str
    at: datetime
    origins: list[LiveOrigin] = Field(description="What said the stream is live: OBS, ffmpeg progress, the relay.")
    platform: str
    target_bitrate_bps: float | None = Field(None, description="Video + audio bitrate the encoder is set to send.")
    tick_interval_s: float = Field(description="The agent's tick interval, to count the ticks expected.")
    run_id: str | None = Field(None, description="The agent run (log file stem) the session began in.")


class SessionEnded(Contract):
    type: Literal["session_ended"] = "session_ended"
    schema_version: int = SCHEMA_VERSION
    session_id: str
    at: datetime = Field(description="When the stream stopped (the start of the gap that ended it).")
    reason: SessionEndReason
    detail: str = ""


class FramesDropped(Contract):
    """Frames lost for one cause, over the frames that cause is measured against."""

    cause: str = Field(description="network (OBS), encoding_lag (OBS), rendering_lag (OBS), encoder (ffmpeg).")
    frames: int
    of_frames: int = Field(description="Frames output, encoded or rendered over the session, whichever applies.")
    ratio: float | None = None


class AlertTally(Contract):
    kind: str
    severity: Severity
    raised: int


class TimeSpan(Contract):
    start: datetime
    end: datetime
    duration_s: float


class WorstMinute(Contract):
    start: datetime = Field(description="The wall-clock minute (UTC) with the lowest health score.")
    score: float
    worst_state: OverallState
    mean_output_bitrate_bps: float | None = None
    frames_dropped: int = 0


class ScorePart(Contract):
    name: str = Field(description="availability, bitrate, frames, alerts: see docs/sessions.md.")
    weight: float
    score: float | None = Field(None, description="0..1; None when nothing measured it (left out of the total).")
    detail: str = ""


class SessionSummary(Contract):
    type: Literal["session_summary"] = "session_summary"
    schema_version: int = SCHEMA_VERSION
    session_id: str
    status: SessionStatus = Field("ended", description="'live' for a session still going (a partial summary).")
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: SessionEndReason | None = None
    end_detail: str = ""
    reconstructed: bool = Field(False, description="Rebuilt from the log (the agent did not write a summary).")
    live_s: float = Field(description="Start to end, gaps included.")
    origins: list[LiveOrigin] = Field(default_factory=list)
    platform: str
    target_bitrate_bps: float | None = None
    output_bitrate_mean_bps: float | None = None
    output_bitrate_min_bps: float | None = None
    output_bitrate_p5_bps: float | None = None
    frames_dropped: list[FramesDropped] = Field(default_factory=list)
    encoder_reconnects: int = 0
    relay_failovers: int = Field(0, description="0 until the relay exists.")
    held_s: float = Field(
        0.0, description="Seconds the relay held the broadcast with its slate while the encoder was lost."
    )
    rtt_p50_ms: float | None = None
    rtt_p95_ms: float | None = None
    jitter_p95_ms: float | None = None
    loss_mean_ratio: float | None = None
    loss_max_ratio: float | None = None
    cpu_mean_ratio: float | None = None
    cpu_max_ratio: float | None = None
    alerts: list[AlertTally] = Field(default_factory=list, description="Alerts raised, by kind and severity.")
    alerts_raised: int = 0
    worst_state: OverallState = "ok"
    longest_outage: TimeSpan | None = Field(None, description="Longest stretch not live or sending nothing.")
    outage_s: float = 0.0
    worst_minute: WorstMinute | None = None
    health_score: float | None = Field(None, description="0..100, see docs/sessions.md.")
    health_parts: list[ScorePart] = Field(default_factory=list)
    ticks_written: int = 0
    ticks_expected: int = 0
    run_id: str | None = None


class SessionDetail(SessionSummary):
    """A summary with the session's alert timeline, read from the log (never written to it)."""

    alerts_timeline: list[AlertTimelineEntry] = Field(default_factory=list, description="Alert changes, oldest first.")
    alerts_truncated: bool = Field(False, description="True when only the newest changes are kept.")


class SessionList(Contract):
    sessions: list[SessionSummary] = Field(description="Newest first.")

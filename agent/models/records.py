"""What goes into the health log and onto the event stream: one model per line or event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from agent.models.alerts import AlertChange
from agent.models.base import SCHEMA_VERSION, Contract
from agent.models.sessions import SessionEnded, SessionStarted, SessionSummary
from agent.models.snapshot import AgentInfo, HealthSnapshot, SourceStatus


class RunStarted(Contract):
    type: Literal["run_started"] = "run_started"
    schema_version: int = SCHEMA_VERSION
    at: datetime
    agent: AgentInfo


class RunStopped(Contract):
    type: Literal["run_stopped"] = "run_stopped"
    schema_version: int = SCHEMA_VERSION
    at: datetime
    reason: str
    uptime_s: float | None = Field(None, description="How long the run lasted, from the monotonic clock.")


class TickRecord(Contract):
    type: Literal["tick"] = "tick"
    schema_version: int = SCHEMA_VERSION
    session_id: str | None = Field(None, description="The stream session live when this was written, if any.")
    snapshot: HealthSnapshot


class AlertRecord(Contract):
    type: Literal["alert"] = "alert"
    schema_version: int = SCHEMA_VERSION
    session_id: str | None = Field(None, description="The stream session live when this was written, if any.")
    at: datetime
    change: AlertChange


class SourceStateRecord(Contract):
    type: Literal["source_state"] = "source_state"
    schema_version: int = SCHEMA_VERSION
    session_id: str | None = Field(None, description="The stream session live when this was written, if any.")
    at: datetime
    status: SourceStatus


class LogGap(Contract):
    """Written first when the health log can be written again: how many records are missing, and when."""

    type: Literal["log_gap"] = "log_gap"
    schema_version: int = SCHEMA_VERSION
    at: datetime
    failing_since: datetime
    lost_records: int
    error: str


class HistorySeries(Contract):
    metric: str
    points: list[tuple[float, float]] = Field(description="(unix time s, value) pairs, oldest first.")


class ErrorBody(Contract):
    error: str
    detail: str | None = None


class Progress(Contract):
    """A step of long work (a bandwidth test, a preflight), on the event stream and in terminals."""

    type: Literal["progress"] = "progress"
    job: str = Field(description="What is running: 'bandwidth', 'preflight', ...")
    job_id: str
    step: str = Field(description="Short name of the current step, e.g. 'upload' or 'ingest reachability'.")
    fraction: float | None = Field(None, ge=0, le=1, description="Share of the whole job done, when known.")
    message: str = ""
    done: bool = False


class JobFinished(Contract):
    """The end of long work: its report (a model of the contract, as JSON) or why it failed."""

    type: Literal["job_finished"] = "job_finished"
    schema_version: int = SCHEMA_VERSION
    session_id: str | None = Field(None, description="The stream session live when this was written, if any.")
    at: datetime
    job: str
    job_id: str
    ok: bool
    error: str | None = None
    report: dict[str, object] | None = None


LogRecord = Annotated[
    RunStarted
    | RunStopped
    | TickRecord
    | AlertRecord
    | SourceStateRecord
    | JobFinished
    | SessionStarted
    | SessionEnded
    | SessionSummary
    | LogGap,
    Field(discriminator="type"),
]
LOG_RECORD: TypeAdapter[LogRecord] = TypeAdapter(LogRecord)

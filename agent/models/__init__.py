"""The data contract (pydantic v2) between sources, rules, API, health log and TUI.

Split by concern; import from here. Units are in field names (`_bps`, `_ms`, `_ratio`, `_bytes`, `_s`).
"""

from agent.models.alerts import Alert, AlertChange, OverallState, Severity, Suggestion, overall_state
from agent.models.base import SCHEMA_VERSION, Contract, Sample, utc_now
from agent.models.records import (
    LOG_RECORD,
    AlertRecord,
    ErrorBody,
    HistorySeries,
    JobFinished,
    LogRecord,
    Progress,
    RunStarted,
    RunStopped,
    SourceStateRecord,
    TickRecord,
)
from agent.models.snapshot import AgentInfo, HealthSnapshot, SourceStateName, SourceStatus
from agent.models.system import (
    BatteryState,
    DiskSpace,
    EncoderProcess,
    InterfaceRates,
    ProcessUsage,
    SystemSample,
)

__all__ = [
    "LOG_RECORD",
    "SCHEMA_VERSION",
    "AgentInfo",
    "Alert",
    "AlertChange",
    "AlertRecord",
    "BatteryState",
    "Contract",
    "DiskSpace",
    "EncoderProcess",
    "ErrorBody",
    "HealthSnapshot",
    "HistorySeries",
    "InterfaceRates",
    "JobFinished",
    "LogRecord",
    "OverallState",
    "ProcessUsage",
    "Progress",
    "RunStarted",
    "RunStopped",
    "Sample",
    "Severity",
    "SourceStateName",
    "SourceStateRecord",
    "SourceStatus",
    "Suggestion",
    "SystemSample",
    "TickRecord",
    "overall_state",
    "utc_now",
]

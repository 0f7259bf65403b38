"""The data contract (pydantic v2) between sources, rules, API, health log and TUI.

Split by concern; import from here. Units are in field names (`_bps`, `_ms`, `_ratio`, `_bytes`, `_s`).
"""

from agent.models.alerts import Alert, AlertChange, OverallState, Severity, Suggestion, overall_state
from agent.models.base import SCHEMA_VERSION, Contract, Sample, utc_now
from agent.models.encoder import EncoderSettings, FfmpegSample, ObsConnection, ObsSample
from agent.models.network import LinkInfo, NetworkSample, TargetStability, TcpInfo, UploadUser
from agent.models.notify import AlertNotification, NotifiedAlert
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
from agent.models.reports import (
    BandwidthBackend,
    BandwidthResult,
    CheckStatus,
    PreflightCheck,
    PreflightReport,
    RecommendedSettings,
    Verdict,
)
from agent.models.runs import AlertTimelineEntry, RunDetail, RunList, RunSummary
from agent.models.shipping import IngestAck, ShippingState, ShippingStateName, record_time
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
    "AlertNotification",
    "AlertRecord",
    "AlertTimelineEntry",
    "BandwidthBackend",
    "BandwidthResult",
    "BatteryState",
    "CheckStatus",
    "Contract",
    "DiskSpace",
    "EncoderProcess",
    "EncoderSettings",
    "ErrorBody",
    "FfmpegSample",
    "HealthSnapshot",
    "HistorySeries",
    "IngestAck",
    "InterfaceRates",
    "JobFinished",
    "LinkInfo",
    "LogRecord",
    "NetworkSample",
    "NotifiedAlert",
    "ObsConnection",
    "ObsSample",
    "OverallState",
    "PreflightCheck",
    "PreflightReport",
    "ProcessUsage",
    "Progress",
    "RecommendedSettings",
    "RunDetail",
    "RunList",
    "RunStarted",
    "RunStopped",
    "RunSummary",
    "Sample",
    "Severity",
    "ShippingState",
    "ShippingStateName",
    "SourceStateName",
    "SourceStateRecord",
    "SourceStatus",
    "Suggestion",
    "SystemSample",
    "TargetStability",
    "TcpInfo",
    "TickRecord",
    "UploadUser",
    "Verdict",
    "overall_state",
    "record_time",
    "utc_now",
]

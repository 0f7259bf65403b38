"""The health snapshot: the latest sample of every source, their states, and the active alerts.

One field per source, named like the source, so the runtime fills it without knowing the sources.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.alerts import Alert, OverallState
from agent.models.base import SCHEMA_VERSION, Contract
from agent.models.capacity import CapacityEstimate
from agent.models.encoder import FfmpegSample, ObsSample
from agent.models.incidents import Incident
from agent.models.network import NetworkSample
from agent.models.relay import RelaySample
from agent.models.reports import BandwidthResult
from agent.models.shipping import ShippingState
from agent.models.system import SystemSample
from agent.models.uplink import UplinkSample

SourceStateName = Literal["starting", "ok", "stale", "error", "disabled"]


class SourceStatus(Contract):
    name: str
    state: SourceStateName
    last_sample_at: datetime | None = None
    age_s: float | None = Field(None, description="Seconds since the last good sample.")
    error: str | None = Field(None, description="Why the last attempt failed, and what to do (redacted).")
    consecutive_failures: int = 0


class AgentInfo(Contract):
    version: str
    pid: int
    started_at: datetime
    uptime_s: float
    platform: str
    ingest_primary: str | None = Field(None, description="The primary ingest URL with its key redacted.")
    ingest_backups: list[str] = Field(default_factory=list, description="Backup ingest URLs, keys redacted.")
    os: str | None = Field(None, description="The operating system (Python's sys.platform: linux, win32, darwin).")
    unavailable_features: dict[str, str] = Field(
        default_factory=dict,
        description="What this operating system does not offer the agent, each saying 'not available on this "
        "platform' and what is measured instead.",
    )
    api_url: str | None = Field(
        None, description="Where this agent's API and /metrics listen (never a token); for Prometheus discovery."
    )
    jobs_running: list[str] = Field(default_factory=list, description="Long work under way: 'preflight', ...")


LoggingStateName = Literal["ok", "failing", "off"]


class LoggingStatus(Contract):
    """Whether the health log is being written: a full disk must show, not only lose records quietly."""

    state: LoggingStateName
    path: str | None = Field(None, description="The file being written.")
    error: str | None = Field(None, description="Why records are not being written, and what to do.")
    failing_since: datetime | None = None
    lost_records: int = Field(0, description="Records not written since logging started failing.")


class HealthSnapshot(Contract):
    schema_version: int = SCHEMA_VERSION
    taken_at: datetime
    agent: AgentInfo
    overall: OverallState
    sources: dict[str, SourceStatus]
    system: SystemSample | None = None
    network: NetworkSample | None = None
    obs: ObsSample | None = None
    ffmpeg: FfmpegSample | None = None
    uplink: UplinkSample | None = Field(None, description="The kernel's view of the encoder's ingest connection.")
    bandwidth: BandwidthResult | None = Field(None, description="The last bandwidth test, if any.")
    relay: RelaySample | None = Field(None, description="The local relay, when it runs (an ingest is configured).")
    alerts: list[Alert] = Field(default_factory=list, description="Active alerts, most severe first.")
    shipping: ShippingState | None = Field(None, description="Shipping to a collector, when [ship] is set.")
    logging: LoggingStatus | None = Field(None, description="The health log: written, failing (disk full?) or off.")
    upload_capacity: CapacityEstimate | None = Field(
        None, description="The best evidence of what the uplink carries, with its source (a bound when app-limited)."
    )
    incidents: list[Incident] = Field(
        default_factory=list, description="What happened in the last 10 minutes, newest first."
    )

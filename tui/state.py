"""What the TUI knows about the agent, updated from the client's messages; screens render from it.

Plain Python, no widgets, so the logic (series for sparklines, alert bookkeeping, acknowledgements,
preflight progress, staleness) is tested without a terminal. The clock is injected so tests and
snapshots are deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from agent.models import (
    Alert,
    AlertChange,
    HealthSnapshot,
    JobFinished,
    PreflightReport,
    Progress,
    RunDetail,
    RunSummary,
    SessionSummary,
    SourceStatus,
    utc_now,
)
from tui.messages import ConnectionState

SERIES_POINTS = 300  # five minutes at 1 Hz: the sparklines' window
PLATFORMS = ("tiktok", "twitch", "youtube", "custom")

# Metrics kept for sparklines, named as the agent's history names them (GET /api/v1/history).
SERIES_METRICS = (
    "obs.output_bitrate_bps",
    "ffmpeg.bitrate_bps",
    "obs.frames_dropped_network_ratio_10s",
    "system.cpu_usage_ratio",
    "system.encoder_cpu_core_ratio",
    "network.ingest_rtt_ms",
    "network.ingest_jitter_ms",
    "network.ingest_loss_ratio",
    "system.upload_bps",
    "relay.queue_ms",
)
_SEVERITY_RANK = {"critical": 0, "warning": 1}


def metric_value(snapshot: HealthSnapshot, metric: str) -> float | None:
    source, _, name = metric.partition(".")
    sample = getattr(snapshot, source, None)
    value = getattr(sample, name, None) if sample is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class PreflightStep:
    name: str
    fraction: float | None = None
    message: str = ""
    done: bool = False


@dataclass
class PreflightState:
    job_id: str | None = None
    running: bool = False
    fraction: float | None = None
    steps: dict[str, PreflightStep] = field(default_factory=dict)
    finished: JobFinished | None = None
    report: PreflightReport | None = None
    error: str | None = None

    def start(self, job_id: str | None) -> None:
        self.job_id, self.running, self.fraction = job_id, True, 0.0
        self.steps.clear()
        self.finished = self.report = self.error = None


@dataclass
class ConnectionStatus:
    state: ConnectionState = "connecting"
    detail: str = ""
    since: datetime | None = None
    retry_in_s: float | None = None


class DashboardState:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.snapshot: HealthSnapshot | None = None
        self.snapshot_received_at: datetime | None = None
        self.series: dict[str, deque[float]] = {name: deque(maxlen=SERIES_POINTS) for name in SERIES_METRICS}
        self.alerts: dict[str, Alert] = {}
        self.acknowledged: set[str] = set()
        self.connection = ConnectionStatus(since=clock())
        self.problems: deque[tuple[datetime, str]] = deque(maxlen=20)
        self.missed_events = 0
        self.preflight = PreflightState()
        self.runs: list[RunSummary] | None = None
        self.runs_error: str | None = None
        self.run_detail: RunDetail | None = None
        self.sessions: list[SessionSummary] | None = None
        self.sessions_error: str | None = None

    # --- updates ---------------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: HealthSnapshot) -> None:
        self.snapshot = snapshot
        self.snapshot_received_at = self.clock()
        for metric, series in self.series.items():
            value = metric_value(snapshot, metric)
            if value is not None:
                series.append(value)
        for alert in snapshot.alerts:  # the snapshot is the truth about what is active now
            self.alerts[alert.id] = alert
        active_ids = {alert.id for alert in snapshot.alerts}
        for alert_id, alert in list(self.alerts.items()):
            if alert.active and alert_id not in active_ids:
                self.alerts[alert_id] = alert.model_copy(update={"cleared_at": snapshot.taken_at})

    def apply_alert_change(self, change: AlertChange) -> bool:
        """Record a change; True when it is a new critical alert (worth the bell and a toast)."""
        previous = self.alerts.get(change.alert.id)
        self.alerts[change.alert.id] = change.alert
        if change.change == "raised":
            self.acknowledged.discard(change.alert.id)  # a new occurrence needs a new look
        newly_critical = change.alert.severity == "critical" and change.change != "cleared"
        return newly_critical and (previous is None or not previous.active or previous.severity != "critical")

    def apply_alert_lists(self, active: list[Alert], cleared: list[Alert]) -> None:
        for alert in [*cleared, *active]:
            self.alerts[alert.id] = alert

    def apply_source_state(self, status: SourceStatus) -> None:
        if self.snapshot is not None:
            sources = {**self.snapshot.sources, status.name: status}
            self.snapshot = self.snapshot.model_copy(update={"sources": sources})

    def apply_series(self, metric: str, values: list[float]) -> None:
        """Backfill a sparkline from the agent's history (on connect), keeping points already here."""
        series = self.series.get(metric)
        if series is not None and len(series) < len(values):
            series.clear()
            series.extend(values[-SERIES_POINTS:])

    def set_connection(self, state: ConnectionState, detail: str, retry_in_s: float | None) -> None:
        if state != self.connection.state:
            self.connection = ConnectionStatus(state, detail, self.clock(), retry_in_s)
        else:
            self.connection.detail, self.connection.retry_in_s = detail, retry_in_s

    def note_problem(self, text: str) -> None:
        self.problems.appendleft((self.clock(), text))

    def recent_problem(self, within_s: float = 30.0) -> str | None:
        """The newest unreadable payload, if it arrived in the last `within_s` seconds."""
        if not self.problems:
            return None
        at, text = self.problems[0]
        return text if (self.clock() - at).total_seconds() <= within_s else None

    def apply_progress(self, progress: Progress) -> None:
        if progress.job != "preflight":
            return
        preflight = self.preflight
        if progress.job_id != preflight.job_id or not preflight.running:
            preflight.start(progress.job_id)  # started elsewhere (another TUI, the CLI): show it too
        for step in preflight.steps.values():
            if step.name != progress.step:
                step.done = True
        if progress.step != "starting":
            preflight.steps[progress.step] = PreflightStep(progress.step, progress.fraction, progress.message)
        preflight.fraction = progress.fraction if progress.fraction is not None else preflight.fraction

    def apply_job_finished(self, finished: JobFinished) -> None:
        if finished.job != "preflight":
            return
        preflight = self.preflight
        preflight.running = False
        preflight.job_id = finished.job_id
        preflight.finished = finished
        for step in preflight.steps.values():
            step.done = True
        preflight.fraction = 1.0
        preflight.report = None
        preflight.error = finished.error
        if finished.ok and finished.report is not None:
            try:
                preflight.report = PreflightReport.model_validate(finished.report)
            except ValidationError as exc:
                preflight.error = f"could not read the preflight report: {exc.errors()[0]['msg']}"
        elif finished.ok:
            preflight.error = "the preflight finished without a report"

    def apply_preflight_report(self, report: PreflightReport) -> None:
        """A preflight that finished before we connected (or that another client started)."""
        preflight = self.preflight
        preflight.running = False
        preflight.report = report
        preflight.error = None
        preflight.fraction = 1.0

    # --- reading ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection.state == "connected"

    def data_age_s(self) -> float | None:
        """Seconds since the last snapshot arrived; None before the first one."""
        if self.snapshot_received_at is None:
            return None
        return max(0.0, (self.clock() - self.snapshot_received_at).total_seconds())

    @property
    def stale(self) -> bool:
        """The data on screen is old: the agent is gone, or ticks stopped arriving."""
        age = self.data_age_s()
        return self.snapshot is not None and (not self.connected or (age is not None and age > 5))

    def sorted_alerts(self) -> tuple[list[Alert], list[Alert]]:
        """Active alerts by severity then age, and cleared ones newest first."""
        active = [alert for alert in self.alerts.values() if alert.active]
        cleared = [alert for alert in self.alerts.values() if not alert.active]
        active.sort(key=lambda alert: (_SEVERITY_RANK[alert.severity], alert.since))
        cleared.sort(key=lambda alert: alert.cleared_at or alert.since, reverse=True)
        return active, cleared

    def unacknowledged_active(self) -> list[Alert]:
        return [alert for alert in self.sorted_alerts()[0] if alert.id not in self.acknowledged]

    def acknowledge(self, alert_id: str) -> bool:
        if alert_id not in self.alerts:
            return False
        self.acknowledged.add(alert_id)
        return True

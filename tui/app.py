"""The Textual app: screens, bindings, and the agent client's messages turned into state.

The client (tui/client.py) runs in a worker and posts messages; the handlers here update the one
`DashboardState` and bump `revision`; the shown screen redraws from the state. Build it with
`build_app` so tests get a deterministic one (fixed clock, no event stream, data fed by hand).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen

from agent.models import utc_now
from tui.client import AgentClient, AgentRequestError
from tui.messages import (
    AlertChanged,
    ConnectionChanged,
    EventsLagged,
    JobDone,
    JobProgressed,
    PayloadProblem,
    SnapshotReceived,
    SourceStateChanged,
)
from tui.screens.alerts import AlertsScreen
from tui.screens.base import DashboardHost
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.live import LiveScreen
from tui.screens.preflight import PreflightScreen
from tui.state import SERIES_METRICS, SERIES_POINTS, DashboardState

PREFLIGHT_DURATION_S = 15.0
DARK_THEME, LIGHT_THEME = "textual-dark", "textual-light"
PROBLEM_TOAST_EVERY_S = 30.0


class StreamHealthApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "streamhealth"
    MODES = {"live": LiveScreen, "alerts": AlertsScreen, "preflight": PreflightScreen, "history": HistoryScreen}
    DEFAULT_MODE = "live"
    BINDINGS = [
        Binding("1", "switch_mode('live')", "Live"),
        Binding("2", "switch_mode('alerts')", "Alerts"),
        Binding("3", "switch_mode('preflight')", "Preflight"),
        Binding("4", "switch_mode('history')", "History"),
        Binding("question_mark", "help", "Help"),
        Binding("t", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    # A var, not a reactive: a reactive repaints the whole app on change; screens redraw only what changed.
    revision: var[int] = var(0, init=False)

    def __init__(
        self,
        client: AgentClient,
        *,
        clock: Callable[[], datetime] = utc_now,
        agent_label: str = "",
        follow_events: bool = True,
        refresh_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.client = client
        self.state = DashboardState(clock)
        self.agent_label = agent_label or client.base_url
        self.follow_events = follow_events
        self.refresh_interval_s = refresh_interval_s
        self._last_problem_toast = -PROBLEM_TOAST_EVERY_S
        self.theme = DARK_THEME

    # --- lifecycle -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.client.attach(self.post_message)
        if self.follow_events:
            self.run_worker(self.client.run_events(), name="events", group="events", exclusive=True)
            # Ages (stale data, alert durations) must move even when no update arrives.
            self.set_interval(self.refresh_interval_s, self._refresh_ages)

    async def on_unmount(self) -> None:
        # Workers first: a catch-up still running would otherwise send on a closed client and fail the exit.
        self.workers.cancel_all()
        await self.client.aclose()

    def _refresh_ages(self) -> None:
        age = self.state.data_age_s()
        if not self.state.connected or age is None or age > 1.5:
            self.revision += 1

    # --- the client's messages -------------------------------------------------------------------

    def on_snapshot_received(self, message: SnapshotReceived) -> None:
        self.state.apply_snapshot(message.snapshot)
        self.revision += 1

    def on_alert_changed(self, message: AlertChanged) -> None:
        if self.state.apply_alert_change(message.change):
            alert = message.change.alert
            self.bell()
            self.notify(alert.message, title="CRITICAL alert", severity="error", timeout=10)
        self.revision += 1

    def on_source_state_changed(self, message: SourceStateChanged) -> None:
        self.state.apply_source_state(message.status)
        self.revision += 1

    def on_job_progressed(self, message: JobProgressed) -> None:
        self.state.apply_progress(message.progress)
        self.revision += 1

    def on_job_done(self, message: JobDone) -> None:
        self.state.apply_job_finished(message.finished)
        if message.finished.job == "preflight":
            report = self.state.preflight.report
            if report is not None:
                self.notify(f"Preflight verdict: {report.verdict.replace('_', ' ')}", title="Preflight")
            else:
                self.notify(self.state.preflight.error or "preflight failed", title="Preflight", severity="error")
        self.revision += 1

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        was_connected = self.state.connected
        self.state.set_connection(message.state, message.detail, message.retry_in_s)
        if message.state == "connected" and not was_connected:
            self.catch_up()
        self.revision += 1

    def on_events_lagged(self, message: EventsLagged) -> None:
        self.state.missed_events += message.missed
        self.catch_up()

    def on_payload_problem(self, message: PayloadProblem) -> None:
        self.state.note_problem(f"'{message.event}' event: {message.detail}")
        now = time.monotonic()
        if now - self._last_problem_toast >= PROBLEM_TOAST_EVERY_S:
            self._last_problem_toast = now
            self.notify(
                f"Skipped an unreadable '{message.event}' update from the agent: {message.detail}",
                title="Bad data from the agent",
                severity="warning",
            )
        self.revision += 1

    @work(exclusive=True, group="catch-up")
    async def catch_up(self) -> None:
        """After (re)connecting: alerts we may have missed, sparkline history, the last preflight."""
        try:
            alerts = await self.client.alerts()
            self.state.apply_alert_lists(alerts.active, alerts.recently_cleared)
            for metric in SERIES_METRICS:
                try:
                    series = await self.client.history(metric, last_s=SERIES_POINTS * 1.0)
                except AgentRequestError:
                    continue  # a metric the agent has not recorded yet
                self.state.apply_series(metric, [value for _, value in series.points])
            if self.state.preflight.report is None and not self.state.preflight.running:
                last = await self.client.last_preflight()
                if last is not None:
                    self.state.apply_preflight_report(last)
        except AgentRequestError as exc:
            self.notify(f"Could not catch up with the agent: {exc}", severity="warning")
        self.revision += 1

    # --- actions ---------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str) -> None:
        if self.state.acknowledge(alert_id):
            self.revision += 1

    def start_preflight(self, platform: str, *, bandwidth: bool) -> None:
        self.state.preflight.start(None)
        self.revision += 1
        self._post_preflight(platform, bandwidth)

    @work(exclusive=True, group="preflight")
    async def _post_preflight(self, platform: str, bandwidth: bool) -> None:
        try:
            job_id = await self.client.start_preflight(platform, PREFLIGHT_DURATION_S, bandwidth)
        except AgentRequestError as exc:
            self.state.preflight.running = False
            self.state.preflight.error = str(exc)
            self.notify(str(exc), title="Preflight", severity="error")
        else:
            if self.state.preflight.job_id is None:
                self.state.preflight.job_id = job_id
        self.revision += 1

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Live", "The dashboard: bitrate, frames, CPU, ingest, sources", lambda: self.switch_mode("live")
        )
        yield SystemCommand("Alerts", "Active and cleared alerts with backup plans", lambda: self.switch_mode("alerts"))
        yield SystemCommand("Preflight", "Run the go / no-go check", lambda: self.switch_mode("preflight"))
        yield SystemCommand(
            "History", "Stream sessions with their summaries, and past runs", lambda: self.switch_mode("history")
        )
        yield SystemCommand("Acknowledge all alerts", "Mark every active alert as seen", self._acknowledge_all)
        yield SystemCommand("Toggle light / dark theme", "Switch the colour theme", self.action_toggle_theme)
        yield SystemCommand("Help", "Keys and how to read the screen", self.action_help)
        yield from super().get_system_commands(screen)

    def _acknowledge_all(self) -> None:
        for alert in self.state.unacknowledged_active():
            self.acknowledge(alert.id)


def build_app(
    client: AgentClient,
    *,
    clock: Callable[[], datetime] = utc_now,
    agent_label: str = "",
    follow_events: bool = True,
    refresh_interval_s: float = 1.0,
) -> StreamHealthApp:
    """The app, ready to run. Tests pass a fixed clock and `follow_events=False`, then feed the client."""
    app = StreamHealthApp(
        client, clock=clock, agent_label=agent_label, follow_events=follow_events, refresh_interval_s=refresh_interval_s
    )
    _host: DashboardHost = app  # mypy checks here that the app gives the screens what they use
    return app

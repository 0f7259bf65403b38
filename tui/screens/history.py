"""The History screen: stream sessions (one live stream each) with their summaries, and past agent runs
with their alert timelines; `v` switches between the two lists."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from agent.models import RunDetail, RunSummary
from agent.models.incidents import IncidentList
from tui.client import AgentRequestError
from tui.render import badge, fmt_duration
from tui.render.incidents import incident_line
from tui.screens.base import DashboardScreen
from tui.screens.session_view import SESSION_COLUMNS, session_row, session_text

CHANGE_LEVELS = {"raised": "critical", "updated": "warning", "cleared": "ok"}


def run_row(run: RunSummary) -> tuple[Text | str, ...]:
    started = f"{run.started_at:%Y-%m-%d %H:%M}" if run.started_at else "?"
    if run.current:
        ended = "running now"
    elif run.stop_reason:
        ended = run.stop_reason
    else:
        ended = "ended abruptly"
    return (
        started,
        fmt_duration(run.duration_s),
        badge(run.worst_state, run.worst_state.upper()),
        f"{run.alerts_raised} ({run.critical_raised} crit)",
        ended,
    )


def timeline_text(detail: RunDetail) -> Text:
    text = Text()
    text.append(f"{detail.run_id}", style="bold")
    text.append(
        f"  platform {detail.platform or '?'} · agent {detail.agent_version or '?'} · {detail.ticks} ticks\n",
        style="dim",
    )
    if detail.unreadable_lines:
        text.append(f"{detail.unreadable_lines} unreadable log lines skipped\n", style="yellow")
    if not detail.alerts:
        text.append("No alert during this run.", style="green")
        return text
    if detail.alerts_truncated:
        text.append("(only the newest alert changes are listed)\n", style="dim")
    for entry in detail.alerts:
        level = CHANGE_LEVELS[entry.change] if entry.change != "raised" else entry.severity
        text.append(f"{entry.at:%H:%M:%S} ")
        text.append_text(badge(level, entry.change.upper()))
        text.append(f" {entry.severity:<8} ", style="bold" if entry.severity == "critical" else "")
        text.append(entry.message + "\n")
    return text


def incidents_text(found: IncidentList) -> Text:
    text = Text(f"Incidents since the agent started at {found.since:%Y-%m-%d %H:%M:%S} UTC", style="bold")
    text.append(f", newest first ({len(found.incidents)})\n", style="dim")
    if found.let_go:
        text.append(f"({found.let_go} older ones no longer kept)\n", style="dim")
    if not found.incidents:
        text.append("Nothing happened.", style="green")
    for incident in found.incidents:
        text.append_text(incident_line(incident))
        text.append("\n")
    return text


class HistoryScreen(DashboardScreen):
    BINDINGS = [
        Binding("r", "reload", "Reload"),
        Binding("v", "switch_list", "Sessions/Runs"),
        Binding("i", "incidents", "Incidents"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.showing = "sessions"

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static("Stream sessions (v: agent runs)", id="history-title")
        sessions: DataTable[Text | str] = DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield sessions
        table: DataTable[Text | str] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        table.display = False
        yield table
        with VerticalScroll(id="timeline-box"):
            yield Static("Choose a session to see its summary.", id="timeline")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one("#sessions", DataTable).add_columns(*SESSION_COLUMNS)
        self.query_one("#runs", DataTable).add_columns("Started (UTC)", "Length", "Worst", "Alerts", "Ended")
        super().on_mount()
        self.action_reload()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()

    def action_reload(self) -> None:
        if self.showing == "sessions":
            self.load_sessions()
        else:
            self.load_runs()

    def action_switch_list(self) -> None:
        self.showing = "runs" if self.showing == "sessions" else "sessions"
        showing_sessions = self.showing == "sessions"
        self.query_one("#sessions", DataTable).display = showing_sessions
        self.query_one("#runs", DataTable).display = not showing_sessions
        title = "Stream sessions (v: agent runs)" if showing_sessions else "Agent runs (v: stream sessions)"
        self.query_one("#history-title", Static).update(title)
        what = "session to see its summary" if showing_sessions else "run to see its alert timeline"
        self.query_one("#timeline", Static).update(f"Choose a {what}.")
        self.query_one("#sessions" if showing_sessions else "#runs", DataTable).focus()
        self.action_reload()

    # --- incidents ------------------------------------------------------------------------------------

    @work(exclusive=True, group="incidents")
    async def action_incidents(self) -> None:
        """The whole run's incident timeline (the Live strip keeps 10 minutes) in the lower box."""
        box = self.query_one("#timeline", Static)
        try:
            found = await self.shapp.client.incidents()
        except AgentRequestError as exc:
            box.update(Text(f"Could not load the incidents: {exc}", style="yellow"))
            return
        box.update(incidents_text(found))

    # --- sessions ------------------------------------------------------------------------------------

    @work(exclusive=True, group="sessions")
    async def load_sessions(self) -> None:
        try:
            sessions = await self.shapp.client.sessions()
        except AgentRequestError as exc:
            self.state.sessions_error = str(exc)
        else:
            self.state.sessions, self.state.sessions_error = sessions, None
        self._show_sessions()

    def _show_sessions(self) -> None:
        table = self.query_one("#sessions", DataTable)
        selected = _selected_key(table)
        table.clear()
        sessions = self.state.sessions or []
        for session in sessions:
            table.add_row(*session_row(session), key=session.session_id)
        if self.state.sessions_error:
            self.query_one("#timeline", Static).update(
                Text(f"Could not load the sessions: {self.state.sessions_error}", style="yellow")
            )
        elif not sessions:
            self.query_one("#timeline", Static).update(
                "No stream sessions in the health logs yet: a session starts when a stream goes live."
            )
        ids = [session.session_id for session in sessions]
        if selected in ids:
            table.move_cursor(row=ids.index(selected))

    @work(exclusive=True, group="session-detail")
    async def load_session(self, session_id: str) -> None:
        try:
            detail = await self.shapp.client.session(session_id)
        except AgentRequestError as exc:
            self.query_one("#timeline", Static).update(Text(f"Could not load {session_id}: {exc}", style="yellow"))
            return
        self.query_one("#timeline", Static).update(session_text(detail))

    # --- runs ----------------------------------------------------------------------------------------

    @work(exclusive=True, group="runs")
    async def load_runs(self) -> None:
        try:
            runs = await self.shapp.client.runs()
        except AgentRequestError as exc:
            self.state.runs_error = str(exc)
        else:
            self.state.runs, self.state.runs_error = runs, None
        self._show_runs()

    def _show_runs(self) -> None:
        table = self.query_one("#runs", DataTable)
        selected = _selected_key(table)
        table.clear()
        runs = self.state.runs or []
        for run in runs:
            table.add_row(*run_row(run), key=run.run_id)
        if self.state.runs_error:
            self.query_one("#timeline", Static).update(
                Text(f"Could not load the runs: {self.state.runs_error}", style="yellow")
            )
        elif not runs:
            self.query_one("#timeline", Static).update("No runs in the health logs yet.")
        ids = [run.run_id for run in runs]
        if selected in ids:
            table.move_cursor(row=ids.index(selected))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is None:
            return
        if event.data_table.id == "sessions":
            self.load_session(key)
        else:
            self.load_run(key)

    @work(exclusive=True, group="run-detail")
    async def load_run(self, run_id: str) -> None:
        try:
            detail = await self.shapp.client.run(run_id)
        except AgentRequestError as exc:
            self.query_one("#timeline", Static).update(Text(f"Could not load {run_id}: {exc}", style="yellow"))
            return
        self.state.run_detail = detail
        self.query_one("#timeline", Static).update(timeline_text(detail))


def _selected_key(table: DataTable[Text | str]) -> str | None:
    if table.row_count and table.cursor_row < table.row_count:
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
    return None

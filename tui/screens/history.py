"""The History screen: past agent runs from the health logs, and the alert timeline of the one chosen."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from agent.models import RunDetail, RunSummary
from tui.client import AgentRequestError
from tui.render import badge, fmt_duration
from tui.screens.base import DashboardScreen

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


class HistoryScreen(DashboardScreen):
    BINDINGS = [Binding("r", "reload", "Reload")]

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        table: DataTable[Text | str] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield table
        with VerticalScroll(id="timeline-box"):
            yield Static("Choose a run to see its alert timeline.", id="timeline")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Started (UTC)", "Length", "Worst", "Alerts", "Ended")
        super().on_mount()
        self.action_reload()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()

    def action_reload(self) -> None:
        self.load_runs()

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
        table = self.query_one(DataTable)
        selected = None
        if table.row_count and table.cursor_row < table.row_count:
            selected = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
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
        if event.row_key.value is not None:
            self.load_run(event.row_key.value)

    @work(exclusive=True, group="run-detail")
    async def load_run(self, run_id: str) -> None:
        try:
            detail = await self.shapp.client.run(run_id)
        except AgentRequestError as exc:
            self.query_one("#timeline", Static).update(Text(f"Could not load {run_id}: {exc}", style="yellow"))
            return
        self.state.run_detail = detail
        self.query_one("#timeline", Static).update(timeline_text(detail))

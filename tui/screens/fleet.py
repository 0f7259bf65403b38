"""The Fleet screen: one row per agent, the stream in trouble on top; type to filter, Enter to open one.

Redraws from the app's latest `FleetView`: sorting and filtering are pure (tui/fleet_render.py), and the
table (tui/widgets/fleet_table.py) draws only the rows on screen, so 500 agents at 1 Hz stay cheap. The
filter box keeps the focus, so typing filters at once; arrows move the cursor, Enter opens the agent.
The screen reads its app through the narrow `FleetData` protocol and asks it to open an agent with a
message (`FleetScreen.OpenAgent`): it never imports tui/fleet_app.py, which imports it.
"""

from __future__ import annotations

from typing import Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from collector.models import FleetRow, FleetView
from tui.fleet_render import summary_line, visible_rows
from tui.render import fmt_age
from tui.widgets.fleet_table import FleetTable


class FleetData(Protocol):
    """What the screen reads of its app (tui/fleet_app.py's FleetApp provides it)."""

    fleet_view: FleetView | None
    fleet_problem: str | None
    collector_label: str

    def fleet_age_s(self) -> float | None: ...


class FleetScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open agent", priority=True),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("down", "move(1)", "Down", show=False, priority=True),
        Binding("up", "move(-1)", "Up", show=False, priority=True),
        Binding("pagedown", "move(20)", "Page down", show=False, priority=True),
        Binding("pageup", "move(-20)", "Page up", show=False, priority=True),
        Binding("right", "columns(12)", "Columns", priority=True),
        Binding("left", "columns(-12)", "← Columns", show=False, priority=True),
    ]

    class OpenAgent(Message):
        """Open this agent's screens (the app points its agent client at the collector's forwarding)."""

        def __init__(self, agent_id: str, name: str) -> None:
            super().__init__()
            self.agent_id, self.name = agent_id, name

    @property
    def fleet_app(self) -> FleetData:
        return cast(FleetData, self.app)

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-status")
        yield Static(id="fleet-banner")
        yield Input(placeholder="type to filter by name, platform, state or alert", id="fleet-filter")
        yield FleetTable(id="fleet")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.watch(self.app, "fleet_revision", lambda _: self.redraw(), init=True)

    def on_screen_resume(self) -> None:
        self.query_one(Input).focus()
        self.redraw()

    def on_input_changed(self, _: Input.Changed) -> None:
        self.redraw()

    def action_clear_filter(self) -> None:
        self.query_one(Input).value = ""

    def action_move(self, rows: int) -> None:
        self.table.move(rows)

    def action_columns(self, cells: int) -> None:
        self.table.scroll_relative(x=cells, animate=False)

    def action_open(self) -> None:
        row = self.table.selected()
        if row is None:
            self.app.bell()
            return
        self.post_message(self.OpenAgent(row.agent_id, row.name))

    def on_fleet_table_opened(self, message: FleetTable.Opened) -> None:
        self.post_message(self.OpenAgent(message.row.agent_id, message.row.name))

    def redraw(self) -> None:
        if not self.is_current:
            return
        app = self.fleet_app
        rows = app.fleet_view.agents if app.fleet_view is not None else []
        filter_text = self.query_one(Input).value
        shown = visible_rows(rows, filter_text)
        self._status(app, rows, len(shown), filter_text)
        self.table.set_rows(shown)

    def _status(self, app: FleetData, rows: list[FleetRow], shown: int, filter_text: str) -> None:
        status = Text()
        status.append(" FLEET ", style="bold black on grey62")
        if app.fleet_problem is not None:
            status.append(f" UNREACHABLE: {app.fleet_problem}", style="bold yellow")
        elif app.fleet_view is None:
            status.append(f" {app.collector_label}  connecting…", style="yellow")
        else:
            status.append(f" {app.collector_label}  updated {fmt_age(app.fleet_age_s())} ago", style="dim")
        self.query_one("#fleet-status", Static).update(status)
        banner = self.query_one("#fleet-banner", Static)
        alerts = app.fleet_view.alerts if app.fleet_view is not None else []
        lines = [summary_line(rows, shown, filter_text)]
        for alert in alerts[:2]:
            lines.append(Text(f"CRIT {alert.message}" if alert.severity == "critical" else f"WARN {alert.message}"))
        if len(alerts) > 2:
            lines.append(Text(f"… and {len(alerts) - 2} more agents lost contact"))
        banner.update(Text("\n").join(lines))
        banner.set_class(bool(alerts), "bad")

"""The Fleet screen: one row per agent, the stream in trouble on top; type to filter, Enter to open one.

Redraws from the app's latest `FleetView` (pure cells from tui/fleet_render.py). With the same rows in
the same order only the cells that changed are updated, so 500 agents at 1 Hz stay cheap; the cursor
stays on the same agent when rows move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from collector.models import FleetRow
from tui.fleet_render import COLUMNS, row_cells, summary_line, visible_rows
from tui.render import fmt_age

if TYPE_CHECKING:
    from tui.fleet_app import FleetApp

Cells = tuple[Text | str, ...]


class FleetScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open agent", priority=True),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("down", "move(1)", "Down", show=False, priority=True),
        Binding("up", "move(-1)", "Up", show=False, priority=True),
        Binding("pagedown", "move(10)", "Page down", show=False, priority=True),
        Binding("pageup", "move(-10)", "Page up", show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[str] = []
        self._cells: dict[str, Cells] = {}
        self._shown: list[FleetRow] = []

    @property
    def fleet_app(self) -> FleetApp:
        return cast("FleetApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-status")
        yield Static(id="fleet-banner")
        yield Input(placeholder="type to filter by name, platform, state or alert", id="fleet-filter")
        table: DataTable[Text | str] = DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
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
        table = self.query_one(DataTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + rows)))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self._shown or table.cursor_row >= len(self._shown):
            self.app.bell()
            return
        row = self._shown[table.cursor_row]
        self.fleet_app.open_agent(row.agent_id, row.name)

    def selected_agent(self) -> str | None:
        table = self.query_one(DataTable)
        return self._keys[table.cursor_row] if self._keys and table.cursor_row < len(self._keys) else None

    def redraw(self) -> None:
        if not self.is_current:
            return
        app = self.fleet_app
        view = app.fleet_view
        rows = view.agents if view is not None else []
        filter_text = self.query_one(Input).value
        shown = visible_rows(rows, filter_text)
        self._shown = shown
        self._status(app, rows, len(shown), filter_text)
        table = self.query_one(DataTable)
        keys = [row.agent_id for row in shown]
        cells = {row.agent_id: row_cells(row) for row in shown}
        if keys == self._keys:
            for key in keys:
                if cells[key] != self._cells.get(key):
                    for (column, _), new, old in zip(COLUMNS, cells[key], self._cells[key], strict=True):
                        if new != old:
                            table.update_cell(key, column, new)
        else:
            selected = self.selected_agent()
            table.clear()
            for row in shown:
                table.add_row(*cells[row.agent_id], key=row.agent_id)
            if selected in keys:
                table.move_cursor(row=keys.index(selected), animate=False)
        self._keys, self._cells = keys, cells

    def _status(self, app: FleetApp, rows: list[FleetRow], shown: int, filter_text: str) -> None:
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

"""The fleet table: a Line API widget that renders only the rows on screen, so 500 agents cost what 30 do.

A DataTable keeps and re-measures every cell of every row: at 500 agents changing every second that was
a third of a core. Here a new fleet is a list swap; `render_line` builds the few visible lines from the
pure cells of tui/fleet_render.py. The header stays on the first line; columns scroll sideways. The
cursor follows its agent when rows move.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from collector.models import FleetRow
from tui.fleet_render import COLUMNS, row_cells

# Column widths in cells, in COLUMNS order; a longer value is cut with an ellipsis.
WIDTHS = {
    "state": 11,
    "name": 18,
    "bitrate": 13,
    "drops": 10,
    "net": 10,
    "cpu": 5,
    "alert": 30,
    "live": 8,
    "platform": 8,
    "backlog": 7,
    "version": 8,
    "seen": 6,
}
GAP = 1
HEADER_STYLE = Style(bold=True, underline=True)
CURSOR_STYLE = Style(reverse=True)


class FleetTable(ScrollView, can_focus=False):
    DEFAULT_CSS = """
    FleetTable {
        height: 1fr;
        scrollbar-size-horizontal: 1;
    }
    """

    class Opened(Message):
        def __init__(self, row: FleetRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[FleetRow] = []
        self.cursor = 0
        self.line_width = sum(WIDTHS[key] + GAP for key, _ in COLUMNS)
        # Rendered lines of the current rows (a screen may repaint several times between two fleets).
        self._lines: dict[tuple[int, bool], list[Segment]] = {}

    # --- data ------------------------------------------------------------------------------------

    def set_rows(self, rows: list[FleetRow]) -> None:
        selected = self.selected()
        self.rows = rows
        self._lines.clear()
        if selected is not None:
            for index, row in enumerate(rows):
                if row.agent_id == selected.agent_id:
                    self.cursor = index
                    break
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        self.virtual_size = Size(self.line_width, len(rows) + 1)
        self._keep_cursor_visible()
        self.refresh()

    def selected(self) -> FleetRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def names(self) -> list[str]:
        return [row.name for row in self.rows]

    # --- moving ----------------------------------------------------------------------------------

    def move(self, rows: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + rows))
        self._keep_cursor_visible()
        self.refresh()

    def _keep_cursor_visible(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # the header takes a line
        top = round(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def on_click(self, event: Click) -> None:
        index = round(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self.rows) and event.y >= 1:
            if index == self.cursor and event.chain >= 2:
                self.post_message(self.Opened(self.rows[index]))
            self.cursor = index
            self.refresh()

    # --- drawing ---------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            text = self._line([label for _, label in COLUMNS])
            text.stylize(HEADER_STYLE)
        else:
            index = round(scroll_y) + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, self.rich_style)
            key = (index, index == self.cursor)
            cached = self._lines.get(key)
            if cached is None:
                text = self._line(list(row_cells(self.rows[index])))
                if index == self.cursor:
                    text.stylize(CURSOR_STYLE)
                cached = self._lines[key] = list(text.render(self.app.console))
            strip = Strip(cached).crop(round(scroll_x), round(scroll_x) + width)
            return strip.extend_cell_length(width, self.rich_style).apply_style(self.rich_style)
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop(round(scroll_x), round(scroll_x) + width)
        return strip.extend_cell_length(width, self.rich_style).apply_style(self.rich_style)

    def _line(self, cells: list[Text | str]) -> Text:
        line = Text(no_wrap=True, end="")
        for (key, _), cell in zip(COLUMNS, cells, strict=True):
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(WIDTHS[key], overflow="ellipsis", pad=True)
            line.append_text(text)
            line.append(" " * GAP)
        return line

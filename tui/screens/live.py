"""The Live screen (default): stream state and six tiles with sparklines (seven with the relay), glanceable at 80x24."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from tui.render import live_tiles
from tui.screens.base import DashboardScreen
from tui.widgets.metric_tile import MetricTile

TILE_KEYS = ("bitrate", "dropped", "cpu", "ingest", "headroom", "sources", "relay")


class LiveScreen(DashboardScreen):
    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Grid(id="tiles"):
            for key in TILE_KEYS:
                yield MetricTile(id=f"tile-{key}", classes="tile level-nodata")
        yield from self.compose_footer()

    def redraw(self) -> None:
        shown = 0
        for view in live_tiles(self.state):
            tile = self.query_one(f"#tile-{view.key}", MetricTile)
            tile.display = not view.hidden
            shown += not view.hidden
            tile.view = view
        rows = (shown + 2) // 3
        grid = self.query_one("#tiles", Grid)
        if grid.styles.grid_size_rows != rows:
            grid.styles.grid_size_rows = rows  # the relay tile adds a row when the agent runs the relay

"""The Live screen (default): stream state and six tiles with sparklines, glanceable at 80x24."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from tui.render import live_tiles
from tui.screens.base import DashboardScreen
from tui.widgets.metric_tile import MetricTile

TILE_KEYS = ("bitrate", "dropped", "cpu", "ingest", "headroom", "sources")


class LiveScreen(DashboardScreen):
    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Grid(id="tiles"):
            for key in TILE_KEYS:
                yield MetricTile(id=f"tile-{key}", classes="tile level-nodata")
        yield from self.compose_footer()

    def redraw(self) -> None:
        for view in live_tiles(self.state):
            self.query_one(f"#tile-{view.key}", MetricTile).view = view

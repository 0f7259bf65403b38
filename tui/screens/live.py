"""The Live screen (default): stream state, six tiles with sparklines (seven with the relay) and the incident
strip in the grid's last row, glanceable at 80x24."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from tui.render import live_tiles
from tui.screens.base import DashboardScreen
from tui.widgets.incident_strip import IncidentStrip
from tui.widgets.metric_tile import MetricTile

TILE_KEYS = ("bitrate", "dropped", "cpu", "ingest", "headroom", "sources", "relay")


class LiveScreen(DashboardScreen):
    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Grid(id="tiles"):
            for key in TILE_KEYS:
                yield MetricTile(id=f"tile-{key}", classes="tile level-nodata")
            yield IncidentStrip(id="incidents", classes="tile")
        yield from self.compose_footer()

    def redraw(self) -> None:
        shown = 0
        for view in live_tiles(self.state):
            tile = self.query_one(f"#tile-{view.key}", MetricTile)
            tile.display = not view.hidden
            shown += not view.hidden
            tile.view = view
        strip = self.query_one(IncidentStrip)
        snapshot = self.state.snapshot
        strip.incidents = tuple(snapshot.incidents) if snapshot is not None else ()
        span = 3 - shown % 3  # the strip fills the last row: beside the relay tile, or the whole row
        if strip.styles.column_span != span:
            strip.styles.column_span = span
        rows = (shown + span) // 3
        grid = self.query_one("#tiles", Grid)
        if grid.styles.grid_size_rows != rows:
            grid.styles.grid_size_rows = rows

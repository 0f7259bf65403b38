"""Pure functions from the dashboard state to what the screens show: tiles, badges, sparklines, texts.

No widgets and no I/O here (Dolphie's habit: a panel is a function of the data), so every state
(no data, stale, warning) is easy to test and cheap to redraw. Severity always has a text label
next to its colour. The display thresholds only colour the tiles; alerts come from the agent.

Where things go:
    levels.py      severity levels, badges, and comparing levels
    numbers.py     formatting numbers with their units
    sparkline.py   block-character sparklines
    tile.py        `TileView` (a tile as data) and `render_tile` (drawing one)
    tiles/         one module per Live tile; `TILE_BUILDERS` in tiles/__init__.py lists them in order
    header.py      the header's stream state and overall label, alert durations
"""

from __future__ import annotations

from tui.render.header import OVERALL_LABELS, alert_duration, stream_state
from tui.render.levels import BADGE_LABELS, BADGE_STYLES, Level, badge, level_above, level_below, worst
from tui.render.numbers import fmt_age, fmt_bps, fmt_count, fmt_duration, fmt_ms, fmt_pct
from tui.render.sparkline import SPARK_BLOCKS, sparkline, sparkline_rows
from tui.render.tile import MAX_SPARK_ROWS, TileView, detail_row, nodata_tile, render_tile
from tui.render.tiles import TILE_BUILDERS, live_tiles
from tui.render.tiles.sources import SOURCE_LEVELS, source_line, source_view

__all__ = [
    "BADGE_LABELS",
    "BADGE_STYLES",
    "MAX_SPARK_ROWS",
    "OVERALL_LABELS",
    "SOURCE_LEVELS",
    "SPARK_BLOCKS",
    "TILE_BUILDERS",
    "Level",
    "TileView",
    "alert_duration",
    "badge",
    "detail_row",
    "fmt_age",
    "fmt_bps",
    "fmt_count",
    "fmt_duration",
    "fmt_ms",
    "fmt_pct",
    "level_above",
    "level_below",
    "live_tiles",
    "nodata_tile",
    "render_tile",
    "source_line",
    "source_view",
    "sparkline",
    "sparkline_rows",
    "stream_state",
    "worst",
]

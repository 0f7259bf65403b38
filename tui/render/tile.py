"""A tile of the Live screen as data (`TileView`) and its drawing into text (`render_tile`).

The tile builders in tui/render/tiles/ each turn the state into one `TileView`; `render_tile` is the
only place that decides how a tile's lines, notes and sparkline share its space.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text

from tui.render.levels import BADGE_LABELS, Level, badge
from tui.render.sparkline import sparkline_rows

MAX_SPARK_ROWS = 8


@dataclass
class TileView:
    key: str
    title: str
    level: Level
    headline: str
    lines: list[Text] = field(default_factory=list)
    spark: Sequence[float] = ()
    spark_max: float | None = None
    spark_caption: str = ""
    notes: list[str] = field(default_factory=list)  # prose (why no data, what to do): wrapped, not cut
    hidden: bool = False  # a tile for a part the agent does not run (the relay without an ingest)


def nodata_tile(key: str, title: str, why: str, hint: str) -> TileView:
    return TileView(key, title, "nodata", "no data", notes=[why, hint] if hint else [why])


def detail_row(label: str, value: str, level: Level | None = None) -> Text:
    """A detail row; a bad value gets a colour and a mark ("!" warning, "!!" critical)."""
    text = Text(f"{label:<8}", style="dim")
    if level == "critical":
        text.append(value + " !!", style="bold red")
    elif level == "warning":
        text.append(value + " !", style="bold yellow")
    else:
        text.append(value)
    return text


def render_tile(view: TileView, width: int, height: int = 0) -> Text:
    """The inside of a tile: headline and badge, detail rows, sparkline with its caption; every
    line cut to `width` so nothing wraps into the next row."""
    head = Text(view.headline, style="bold")
    label = BADGE_LABELS[view.level]
    head.append(" " * max(1, width - len(view.headline) - len(label) - 2))
    head.append_text(badge(view.level))
    lines = [head, *view.lines]
    for note in view.notes:
        lines.extend(Text(part, style="italic") for part in textwrap.wrap(note, width) or [""])
    if view.spark:
        free = height - len(lines) - (1 if view.spark_caption else 0)
        rows = min(MAX_SPARK_ROWS, max(1, free))
        lines.extend(Text(row, style="cyan") for row in sparkline_rows(list(view.spark), width, rows, view.spark_max))
        if view.spark_caption:
            lines.append(Text(view.spark_caption.rjust(width), style="dim"))
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return Text("\n").join(lines)

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


LABEL_WIDTH = 7
INDENT = " " * (LABEL_WIDTH + 1)


def detail_row(label: str, value: str, level: Level | None = None) -> Text:
    """A detail row; a bad value gets a colour and a mark ("!" warning, "!!" critical). The label is
    always followed by a space, however long it is."""
    text = Text(f"{label:<{LABEL_WIDTH}} ", style="dim")
    if level == "critical":
        text.append(value + " !!", style="bold red")
    elif level == "warning":
        text.append(value + " !", style="bold yellow")
    else:
        text.append(value)
    return text


def fit_line(line: Text, width: int) -> list[Text]:
    """A line as rows of at most `width` cells: whole words carried to the next row under the value,
    never cut with an ellipsis (a number or a state cut in half is a wrong number). A single word longer
    than the row is split, since it cannot be shown otherwise."""
    indent = INDENT if width >= len(INDENT) + 12 else ""
    rows: list[Text] = []
    rest = line
    while rest.cell_len > width and len(rows) < 20:
        plain = rest.plain
        start = len(indent) if rows else 0
        cut = plain.rfind(" ", start + 1, width + 1)
        if cut <= start:
            cut = width  # one word longer than the row
        row = rest[:cut]
        row.rstrip()
        rows.append(row)
        tail = rest[cut:]
        tail = tail[len(tail.plain) - len(tail.plain.lstrip(" ")) :]
        rest = Text(indent) + tail if indent else tail
    rows.append(rest)
    return rows


def render_lines(view: TileView, width: int, height: int = 0) -> list[Text]:
    """The tile's rows: headline and badge, then detail rows, notes and sparkline while they fit. A row
    that does not fit `height` is left out whole (a short terminal shows fewer lines, never half of one);
    the sparkline goes first, then the notes, then the last detail rows."""
    label = BADGE_LABELS[view.level]
    head = Text(view.headline, style="bold")
    head.append(" " * max(1, width - len(view.headline) - len(label) - 2))
    head.append_text(badge(view.level))
    if head.cell_len > width:  # a tile too narrow for both: the state word (badge) wins, it is the verdict
        head = badge(view.level)
    rows = [head]
    room = height if height > 0 else 10_000
    for line in view.lines:
        fitted = fit_line(line, width)
        if len(rows) + len(fitted) > room:
            continue  # left out whole; a shorter row after it may still fit
        rows.extend(fitted)
    for note in view.notes:
        wrapped = [Text(part, style="italic") for part in textwrap.wrap(note, width) or [""]]
        if len(rows) + len(wrapped) > room:
            break
        rows.extend(wrapped)
    if view.spark:
        free = room - len(rows) - (1 if view.spark_caption else 0)
        if free >= 1:
            spark_rows = min(MAX_SPARK_ROWS, free)
            values = list(view.spark)
            rows.extend(Text(row, style="cyan") for row in sparkline_rows(values, width, spark_rows, view.spark_max))
            if view.spark_caption:
                rows.append(Text(view.spark_caption.rjust(width), style="dim"))
    return rows


def render_tile(view: TileView, width: int, height: int = 0) -> Text:
    """The inside of a tile (see `render_lines`), as one text."""
    return Text("\n").join(render_lines(view, width, height))

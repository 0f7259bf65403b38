"""Sparklines in block characters, bucketed from the newest value so the right edge is always now."""

from __future__ import annotations

import math
from collections.abc import Sequence

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def _bucketed(values: Sequence[float], width: int) -> list[float]:
    """Average consecutive values so they fit `width` columns, counting buckets from the newest."""
    bucket = max(1, math.ceil(len(values) / width))
    points: list[float] = []
    end = len(values)
    while end > 0 and len(points) < width:
        chunk = values[max(0, end - bucket) : end]
        points.append(sum(chunk) / len(chunk))
        end -= bucket
    points.reverse()
    return points


def sparkline(values: Sequence[float], width: int, vmax: float | None = None, vmin: float = 0.0) -> str:
    """One line of block characters, the newest value on the right."""
    rows = sparkline_rows(values, width, 1, vmax, vmin)
    return rows[0] if rows else ""


def sparkline_rows(
    values: Sequence[float], width: int, rows: int, vmax: float | None = None, vmin: float = 0.0
) -> list[str]:
    """A sparkline `rows` lines tall (eighths of a cell per step), top line first, right-aligned."""
    if width <= 0 or rows <= 0 or not values:
        return []
    points = _bucketed(values, width)
    top = vmax if vmax is not None else max(points)
    span = top - vmin
    steps = rows * 8
    heights = []
    for value in points:
        ratio = 0.0 if span <= 0 else min(1.0, max(0.0, (value - vmin) / span))
        heights.append(max(1, round(ratio * steps)))  # never empty: a zero still shows a baseline
    lines = []
    for row in range(rows - 1, -1, -1):
        cells = []
        for height in heights:
            fill = min(8, max(0, height - row * 8))
            cells.append(SPARK_BLOCKS[fill - 1] if fill else " ")
        lines.append("".join(cells).rjust(width))
    return lines

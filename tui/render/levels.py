"""Severity levels and their badges: every colour comes with a text label, so the meaning survives
a monochrome terminal or colour-blind eyes."""

from __future__ import annotations

from typing import Literal

from rich.text import Text

Level = Literal["ok", "warning", "critical", "nodata", "stale"]

BADGE_STYLES: dict[str, str] = {
    "ok": "bold black on green3",
    "warning": "bold black on yellow",
    "critical": "bold white on red3",
    "nodata": "bold black on grey62",
    "stale": "bold black on grey62",
    "starting": "bold black on steel_blue1",  # the agent has not measured everything yet: neither good nor bad
}
BADGE_LABELS: dict[str, str] = {
    "ok": "OK",
    "warning": "WARN",
    "critical": "CRIT",
    "nodata": "NO DATA",
    "stale": "STALE",
    "starting": "STARTING",
}
_LEVEL_RANK: dict[str, int] = {"nodata": 0, "stale": 0, "ok": 1, "warning": 2, "critical": 3}


def badge(level: str, label: str | None = None) -> Text:
    return Text(f" {label or BADGE_LABELS[level]} ", style=BADGE_STYLES.get(level, "bold"))


def worst(*levels: Level) -> Level:
    return max(levels, key=lambda level: _LEVEL_RANK[level])


def level_above(value: float | None, warn: float, crit: float) -> Level:
    if value is None:
        return "nodata"
    return "critical" if value >= crit else "warning" if value >= warn else "ok"


def level_below(value: float | None, warn: float, crit: float) -> Level:
    if value is None:
        return "nodata"
    return "critical" if value <= crit else "warning" if value <= warn else "ok"

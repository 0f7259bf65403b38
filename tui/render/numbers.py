"""Numbers as the dashboard writes them: units attached, a dash when there is no value."""

from __future__ import annotations


def fmt_bps(bps: float | None) -> str:
    if bps is None:
        return "—"
    if bps >= 1e9:
        return f"{bps / 1e9:.2f} Gb/s"
    if bps >= 1e6:
        return f"{bps / 1e6:.2f} Mb/s"
    return f"{bps / 1e3:.0f} kb/s"


def fmt_pct(ratio: float | None, digits: int = 1) -> str:
    return "—" if ratio is None else f"{ratio * 100:.{digits}f}%"


def fmt_ms(ms: float | None) -> str:
    return "—" if ms is None else f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def fmt_count(count: int | None) -> str:
    return "—" if count is None else f"{count:,}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"

"""The fleet table as pure functions of the collector's `FleetView`: which rows, in what order, what each cell says.

No widgets here, so sorting, filtering and every cell are tested without a terminal. A state is a word
as well as a colour (readable without colour). Columns run from what matters most to least, so at 80
columns the state, name, bitrate, drops, network and CPU show first and the rest scrolls into view.
"""

from __future__ import annotations

from rich.text import Text

from collector.models import FleetRow, FleetStreamState
from tui.render import fmt_age, fmt_duration

TROUBLE_RANK: dict[FleetStreamState, int] = {"lost_contact": 0, "degraded": 1, "preflight": 2, "live": 3, "offline": 4}
STATE_WORDS: dict[FleetStreamState, str] = {
    "lost_contact": "LOST",
    "degraded": "DEGRADED",
    "preflight": "PREFLIGHT",
    "live": "LIVE",
    "offline": "offline",
}
STATE_STYLES: dict[FleetStreamState, str] = {
    "lost_contact": "bold white on red3",
    "degraded": "bold black on yellow",
    "preflight": "bold black on cyan",
    "live": "bold black on green3",
    "offline": "dim",
}
SUMMARY_STYLES: dict[FleetStreamState, str] = {
    "lost_contact": "bold red",
    "degraded": "bold yellow",
    "preflight": "cyan",
    "live": "green",
    "offline": "dim",
}
CAUSE_SHORT = {"network": "net", "encoding": "enc", "rendering": "rnd", "ffmpeg": "ff"}
COLUMNS = (
    ("state", "State"),
    ("name", "Agent"),
    ("bitrate", "Out / target"),
    ("drops", "Drops/min"),
    ("net", "RTT  loss"),
    ("cpu", "CPU"),
    ("alert", "Worst alert"),
    ("live", "Live"),
    ("platform", "Platform"),
    ("backlog", "Backlog"),
    ("version", "Version"),
    ("seen", "Seen"),
)


def trouble_key(row: FleetRow) -> tuple[int, int, str]:
    critical = 0 if row.overall == "critical" or row.was_live else 1
    return TROUBLE_RANK[row.stream_state], critical, row.name.casefold()


def visible_rows(rows: list[FleetRow], filter_text: str = "") -> list[FleetRow]:
    """Sorted by trouble, then name; a filter matches name, platform, state or the worst alert's kind."""
    words = filter_text.casefold().split()
    if words:
        rows = [row for row in rows if all(word in _haystack(row) for word in words)]
    return sorted(rows, key=trouble_key)


def _haystack(row: FleetRow) -> str:
    alert = row.worst_alert.kind if row.worst_alert is not None else ""
    return f"{row.name} {row.platform or ''} {row.stream_state} {STATE_WORDS[row.stream_state]} {alert}".casefold()


def state_cell(row: FleetRow) -> Text:
    return Text(f" {STATE_WORDS[row.stream_state]} ", style=STATE_STYLES[row.stream_state])


def _mbps(bps: float | None) -> str:
    return "—" if bps is None else f"{bps / 1e6:.1f}"


def bitrate_cell(row: FleetRow) -> Text:
    if row.output_bitrate_bps is None:
        return Text("—", style="dim")
    text = f"{_mbps(row.output_bitrate_bps)}/{_mbps(row.target_bitrate_bps)}M"
    low = row.target_bitrate_bps is not None and row.output_bitrate_bps < 0.8 * row.target_bitrate_bps
    return Text(text + (" LOW" if low else ""), style="yellow" if low else "")


def drops_cell(row: FleetRow) -> Text:
    drops = {cause: count for cause, count in row.dropped_last_minute.items() if count > 0}
    if not row.dropped_last_minute:
        return Text("—", style="dim")
    if not drops:
        return Text("0")
    cause, _ = max(drops.items(), key=lambda item: item[1])
    total = sum(drops.values())
    more = "+" if len(drops) > 1 else ""
    return Text(f"{total} {CAUSE_SHORT.get(cause, cause[:3])}{more}", style="yellow" if total else "")


def network_cell(row: FleetRow) -> str:
    rtt = "—" if row.rtt_ms is None else f"{row.rtt_ms:.0f}ms"
    loss = "—" if row.loss_ratio is None else f"{row.loss_ratio * 100:.0f}%"
    return f"{rtt} {loss}"


def alert_cell(row: FleetRow) -> Text:
    alert = row.worst_alert
    if alert is None:
        return Text("—", style="dim")
    more = f" +{row.alerts_active - 1}" if row.alerts_active > 1 else ""
    style = "bold red" if alert.severity == "critical" else "yellow"
    return Text(f"{'CRIT' if alert.severity == 'critical' else 'WARN'} {alert.kind}{more}", style=style)


def row_cells(row: FleetRow) -> tuple[Text | str, ...]:
    """The row's cells, in COLUMNS order."""
    cpu = "—" if row.cpu_ratio is None else f"{row.cpu_ratio * 100:.0f}%"
    backlog = "—" if row.lines_waiting is None else str(row.lines_waiting)
    seen = Text(fmt_age(row.silent_s), style="bold red" if row.stream_state == "lost_contact" else "")
    return (
        state_cell(row),
        row.name,
        bitrate_cell(row),
        drops_cell(row),
        network_cell(row),
        cpu,
        alert_cell(row),
        fmt_duration(row.live_s) if row.live_s is not None else "—",
        row.platform or "—",
        backlog,
        row.version or "—",
        seen,
    )


def summary_line(rows: list[FleetRow], shown: int, filter_text: str) -> Text:
    counts = {state: 0 for state in TROUBLE_RANK}
    for row in rows:
        counts[row.stream_state] += 1
    text = Text()
    for state in TROUBLE_RANK:
        if counts[state]:
            text.append(f"{counts[state]} {STATE_WORDS[state].lower()}  ", style=SUMMARY_STYLES[state])
    text.append(f"{shown}/{len(rows)} shown" + (" (filtered)" if filter_text else ""), style="dim")
    return text

"""Pure functions from the dashboard state to what the screens show: tiles, badges, sparklines, texts.

No widgets and no I/O here (Dolphie's habit: a panel is a function of the data), so every state
(no data, stale, warning) is easy to test and cheap to redraw. Severity always has a text label
next to its colour. The display thresholds below only colour the tiles; alerts come from the agent.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from rich.text import Text

from agent.models import Alert, HealthSnapshot, SourceStatus
from tui.state import DashboardState

Level = Literal["ok", "warning", "critical", "nodata", "stale"]

BADGE_STYLES: dict[str, str] = {
    "ok": "bold black on green3",
    "warning": "bold black on yellow",
    "critical": "bold white on red3",
    "nodata": "bold black on grey62",
    "stale": "bold black on grey62",
}
BADGE_LABELS: dict[str, str] = {
    "ok": "OK",
    "warning": "WARN",
    "critical": "CRIT",
    "nodata": "NO DATA",
    "stale": "STALE",
}
_LEVEL_RANK: dict[str, int] = {"nodata": 0, "stale": 0, "ok": 1, "warning": 2, "critical": 3}
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


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


# --- numbers -------------------------------------------------------------------------------------


def fmt_bps(bps: float | None) -> str:
    if bps is None:
        return "—"
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


# --- sparklines ----------------------------------------------------------------------------------


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


# --- tiles ---------------------------------------------------------------------------------------


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


def _nodata(key: str, title: str, why: str, hint: str) -> TileView:
    return TileView(key, title, "nodata", "no data", notes=[why, hint] if hint else [why])


def _row(label: str, value: str, level: Level | None = None) -> Text:
    """A detail row; a bad value gets a colour and a mark ("!" warning, "!!" critical)."""
    text = Text(f"{label:<8}", style="dim")
    if level == "critical":
        text.append(value + " !!", style="bold red")
    elif level == "warning":
        text.append(value + " !", style="bold yellow")
    else:
        text.append(value)
    return text


def bitrate_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    obs, ffmpeg = (snapshot.obs, snapshot.ffmpeg) if snapshot else (None, None)
    title = "Output bitrate"
    if obs is not None and obs.output_bitrate_bps is not None:
        actual, series = obs.output_bitrate_bps, state.series["obs.output_bitrate_bps"]
    elif ffmpeg is not None and ffmpeg.bitrate_bps is not None:
        actual, series = ffmpeg.bitrate_bps, state.series["ffmpeg.bitrate_bps"]
    else:
        why = "encoder not streaming" if obs is not None or ffmpeg is not None else "no encoder source"
        return _nodata("bitrate", title, why, "configure sources.obs or sources.ffmpeg")
    target_kbps = obs.settings.video_bitrate_kbps if obs is not None and obs.settings is not None else None
    lines = []
    level: Level = "ok"
    if target_kbps:
        ratio = actual / (target_kbps * 1000)
        level = level_below(ratio, 0.8, 0.5)
        lines.append(_row("target", f"{fmt_bps(target_kbps * 1000)} {ratio * 100:.0f}%", level))
    else:
        lines.append(_row("target", "unknown"))
    if obs is not None and obs.output_congestion_ratio is not None:
        congestion = level_above(obs.output_congestion_ratio, 0.1, 0.5)
        level = worst(level, congestion)
        lines.append(_row("congest", fmt_pct(obs.output_congestion_ratio, 0), congestion))
    spark_max = target_kbps * 1000 * 1.25 if target_kbps else None
    return TileView("bitrate", title, level, fmt_bps(actual), lines, series, spark_max, "last 5 min")


def dropped_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    obs, ffmpeg = (snapshot.obs, snapshot.ffmpeg) if snapshot else (None, None)
    title = "Dropped frames"
    if obs is not None and obs.connection == "connected":
        causes = [
            ("network", obs.frames_dropped_network_ratio_10s, obs.frames_dropped_network_total),
            ("encoding", obs.frames_skipped_encoding_ratio_10s, obs.frames_skipped_encoding_total),
            ("render", obs.frames_missed_rendering_ratio_10s, obs.frames_missed_rendering_total),
        ]
    elif ffmpeg is not None:
        causes = [("encoder", ffmpeg.frames_dropped_ratio_10s, ffmpeg.drop_frames_total)]
    else:
        why = "OBS not connected" if obs is not None else "no encoder source"
        return _nodata("dropped", title, why, "frames are counted by OBS or ffmpeg")
    level: Level = "ok"
    lines = []
    for name, ratio, total in causes:
        cause_level = level_above(ratio, 0.005, 0.02) if ratio is not None else "nodata"
        if cause_level != "nodata":
            level = worst(level, cause_level)
        lines.append(_row(name, f"{fmt_pct(ratio, 2):>6} {fmt_count(total):>6}", cause_level))
    ratios = [ratio for _, ratio, _ in causes if ratio is not None]
    headline = fmt_pct(max(ratios), 2) if ratios else "—"
    return TileView(
        "dropped",
        title,
        level,
        headline,
        lines,
        state.series["obs.frames_dropped_network_ratio_10s"],
        0.05,
        "network, 10 s",
    )


def cpu_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    system = snapshot.system if snapshot else None
    if system is None:
        return _nodata("cpu", "CPU", "no system sample yet", "sources.system measures it")
    level = level_above(system.cpu_usage_ratio, 0.8, 0.95)
    lines = [_row("system", f"{fmt_pct(system.cpu_usage_ratio, 0)} ({system.cpu_count_logical} cores)")]
    encoder = system.encoder_process
    if encoder is not None and system.encoder_cpu_core_ratio is not None:
        lines.append(_row(encoder.kind[:7], f"{fmt_pct(system.encoder_cpu_core_ratio, 0)} of 1 core"))
    else:
        lines.append(_row("encoder", "not found"))
    if system.load_average_1m is not None:
        lines.append(_row("load 1m", f"{system.load_average_1m:.2f}"))
    return TileView(
        "cpu",
        "CPU",
        level,
        fmt_pct(system.cpu_usage_ratio, 0),
        lines,
        state.series["system.cpu_usage_ratio"],
        1.0,
        "0-100%, 5 min",
    )


def ingest_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    network = snapshot.network if snapshot else None
    title = "Ingest network"
    if network is None:
        return _nodata("ingest", title, "no network source", "set ingest.primary to probe it")
    if network.ingest_reachable is False:
        error = next((target.error for target in network.targets if target.role == "primary" and target.error), None)
        notes = [error or "the primary ingest does not answer"]
        return TileView(
            "ingest", title, "critical", "UNREACHABLE", [], state.series["network.ingest_rtt_ms"], notes=notes
        )
    rtt_series = state.series["network.ingest_rtt_ms"]
    rtt = level_above(network.ingest_rtt_ms, 150, 300)
    jitter = level_above(network.ingest_jitter_ms, 30, 80)
    loss = level_above(network.ingest_loss_ratio, 0.01, 0.05)
    levels = [level for level in (rtt, jitter, loss) if level != "nodata"]
    level = worst(*levels) if levels else "nodata"
    lines = [
        _row("jitter", fmt_ms(network.ingest_jitter_ms), jitter),
        _row("loss", fmt_pct(network.ingest_loss_ratio, 1), loss),
        _row(
            "link",
            network.link.kind + (f" {network.link.wifi_signal_dbm:.0f} dBm" if network.link.wifi_signal_dbm else ""),
        ),
    ]
    return TileView(
        "ingest", title, level, fmt_ms(network.ingest_rtt_ms), lines, rtt_series, max(150.0, *rtt_series, 0.0), "RTT"
    )


def headroom_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    title = "Upload headroom"
    bandwidth = snapshot.bandwidth if snapshot else None
    system = snapshot.system if snapshot else None
    obs = snapshot.obs if snapshot else None
    using = system.upload_bps if system is not None else None
    using_row = _row("sending", fmt_bps(using))
    if bandwidth is None or bandwidth.upload_bps is None:
        notes = ["no bandwidth test yet: run a preflight (key 3)"]
        series = state.series["system.upload_bps"]
        return TileView("headroom", title, "nodata", "—", [using_row], series, None, "sending", notes)
    configured_kbps = obs.settings.video_bitrate_kbps if obs is not None and obs.settings is not None else None
    needed_bps = (configured_kbps * 1000) if configured_kbps else using
    lines = [_row("tested", fmt_bps(bandwidth.upload_bps))]
    if needed_bps:
        headroom = bandwidth.upload_bps / needed_bps
        level = level_below(headroom, 1.5, 1.1)
        headline = f"{headroom:.1f}x"
        lines.append(_row("needs", fmt_bps(needed_bps)))
    else:
        level, headline = "ok", fmt_bps(bandwidth.upload_bps)
    if bandwidth.recommended_video_kbps:
        lines.append(_row("advised", f"{bandwidth.recommended_video_kbps} kb/s"))
    lines.append(using_row)
    series = state.series["system.upload_bps"]
    return TileView("headroom", title, level, headline, lines, series, bandwidth.upload_bps, "sending vs measured")


SOURCE_LEVELS: dict[str, Level] = {
    "ok": "ok",
    "starting": "nodata",
    "stale": "warning",
    "error": "critical",
    "disabled": "nodata",
}


_OBS_CONNECTION_LABELS = {
    "connecting": "CONNECTING",
    "not_connected": "NOT CONNECTED",
    "auth_failed": "AUTH FAILED",
    "kicked": "KICKED",
}


def source_view(status: SourceStatus, snapshot: HealthSnapshot | None) -> tuple[Level, str, str | None]:
    """Level, label and detail of one source as a user means it: the OBS source works fine while OBS
    itself is closed, but "OK" would say the wrong thing; a source that waits for ffmpeg is waiting."""
    obs = snapshot.obs if snapshot is not None else None
    if status.name == "obs" and status.state == "ok" and obs is not None and obs.connection != "connected":
        level: Level = "critical" if obs.connection == "auth_failed" else "warning"
        return level, _OBS_CONNECTION_LABELS.get(obs.connection, obs.connection.upper()), obs.connection_detail
    if status.state == "starting":
        return "nodata", "WAITING", "no data yet"
    label = status.state.upper()
    if status.state == "stale":
        label = f"STALE {fmt_age(status.age_s)}"
    detail = status.error if status.state in ("error", "stale") else None
    return SOURCE_LEVELS[status.state], label, detail


def source_line(status: SourceStatus, snapshot: HealthSnapshot | None = None, width: int = 40) -> Text:
    level, label, detail = source_view(status, snapshot)
    text = Text(f"{status.name:<9}", style="bold")
    text.append_text(badge(level, label))
    if detail:
        text.append(" " + detail, style="dim")
    text.truncate(width, overflow="ellipsis")
    return text


def sources_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    if snapshot is None or not snapshot.sources:
        return _nodata("sources", "Sources", "no sources reported", "")
    statuses = sorted(snapshot.sources.values(), key=lambda status: status.name)
    views = [source_view(status, snapshot) for status in statuses]
    level = worst(*(view[0] for view in views))
    healthy = sum(view[0] == "ok" for view in views)
    lines = [source_line(status, snapshot, width=200) for status in statuses]  # render_tile cuts to the tile
    if snapshot.shipping is not None:
        from tui.shipping_view import shipping_line

        lines.append(shipping_line(snapshot.shipping))
    return TileView("sources", "Sources", level, f"{healthy}/{len(statuses)} ok", lines)


TILE_BUILDERS = (bitrate_tile, dropped_tile, cpu_tile, ingest_tile, headroom_tile, sources_tile)


def live_tiles(state: DashboardState) -> list[TileView]:
    tiles = [build(state.snapshot, state) for build in TILE_BUILDERS]
    for tile in tiles:
        tile.spark = tuple(tile.spark)  # a copy: views are compared to skip redrawing unchanged tiles
    if state.stale:
        age = fmt_age(state.data_age_s())
        for tile in tiles:
            tile.level = "stale"
            tile.spark_caption = f"as of {age} ago"
    return tiles


MAX_SPARK_ROWS = 8


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


# --- header --------------------------------------------------------------------------------------


def stream_state(snapshot: HealthSnapshot | None) -> tuple[str, Level]:
    """OFFLINE / LIVE h:mm:ss / RECONNECTING, from the encoder that knows."""
    if snapshot is None:
        return "NO DATA", "nodata"
    obs, ffmpeg = snapshot.obs, snapshot.ffmpeg
    if obs is not None and obs.connection == "connected":
        if obs.reconnecting:
            return "RECONNECTING", "critical"
        if obs.streaming:
            return f"LIVE {fmt_duration(obs.stream_duration_s)}", "ok"
        return "OFFLINE", "nodata"
    if ffmpeg is not None and not ffmpeg.ended:
        return f"LIVE {fmt_duration(ffmpeg.out_time_s)}", "ok"
    return "OFFLINE", "nodata"


OVERALL_LABELS = {"ok": "HEALTH OK", "warning": "HEALTH WARNING", "critical": "HEALTH CRITICAL"}


def alert_duration(alert: Alert, now: datetime) -> str:
    end = alert.cleared_at or now
    return fmt_duration((end - alert.since).total_seconds())

"""The dropped frames tile: the share of frames lost in the last 10 s, by cause (network, encoding, render)."""

from __future__ import annotations

from agent.models import HealthSnapshot
from tui.render.levels import Level, level_above, worst
from tui.render.numbers import fmt_count, fmt_pct
from tui.render.tile import TileView, detail_row, nodata_tile
from tui.state import DashboardState


def dropped_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    obs, ffmpeg = (snapshot.obs, snapshot.ffmpeg) if snapshot else (None, None)
    title = "Dropped frames"
    if obs is not None and obs.connection == "connected":
        causes = [
            ("network", obs.frames_dropped_network_ratio_10s, obs.frames_dropped_network_total),
            ("encode", obs.frames_skipped_encoding_ratio_10s, obs.frames_skipped_encoding_total),
            ("render", obs.frames_missed_rendering_ratio_10s, obs.frames_missed_rendering_total),
        ]
    elif ffmpeg is not None:
        causes = [("encoder", ffmpeg.frames_dropped_ratio_10s, ffmpeg.drop_frames_total)]
    else:
        why = "OBS not connected" if obs is not None else "no encoder source"
        return nodata_tile("dropped", title, why, "frames are counted by OBS or ffmpeg")
    level: Level = "ok"
    lines = []
    for name, ratio, total in causes:
        cause_level = level_above(ratio, 0.005, 0.02) if ratio is not None else "nodata"
        if cause_level != "nodata":
            level = worst(level, cause_level)
        lines.append(detail_row(name, f"{fmt_pct(ratio, 2):>6} {fmt_count(total):>6}", cause_level))
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

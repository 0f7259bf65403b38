"""The output bitrate tile: what the encoder sends against what it is set to send, and congestion."""

from __future__ import annotations

from agent.models import HealthSnapshot
from tui.render.levels import Level, level_above, level_below, worst
from tui.render.numbers import fmt_bps, fmt_pct
from tui.render.tile import TileView, detail_row, nodata_tile
from tui.state import DashboardState


def bitrate_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    obs, ffmpeg = (snapshot.obs, snapshot.ffmpeg) if snapshot else (None, None)
    title = "Output bitrate"
    if obs is not None and obs.output_bitrate_bps is not None:
        actual, series = obs.output_bitrate_bps, state.series["obs.output_bitrate_bps"]
    elif ffmpeg is not None and ffmpeg.bitrate_bps is not None:
        actual, series = ffmpeg.bitrate_bps, state.series["ffmpeg.bitrate_bps"]
    elif obs is None and ffmpeg is None:
        return nodata_tile("bitrate", title, "no encoder source", "configure sources.obs or sources.ffmpeg")
    else:
        # A configured source that is not there says so; "configure sources.obs" would be wrong advice when
        # OBS was killed mid-stream (the Sources tile says why it is not connected).
        connected = obs is None or obs.connection == "connected"
        return nodata_tile("bitrate", title, "encoder not streaming" if connected else "OBS not connected", "")
    target_kbps = obs.settings.video_bitrate_kbps if obs is not None and obs.settings is not None else None
    lines = []
    level: Level = "ok"
    if target_kbps:
        ratio = actual / (target_kbps * 1000)
        level = level_below(ratio, 0.8, 0.5)
        lines.append(detail_row("target", f"{fmt_bps(target_kbps * 1000)} {ratio * 100:.0f}%", level))
    else:
        lines.append(detail_row("target", "unknown"))
    if obs is not None and obs.output_congestion_ratio is not None:
        congestion = level_above(obs.output_congestion_ratio, 0.1, 0.5)
        level = worst(level, congestion)
        lines.append(detail_row("congest", fmt_pct(obs.output_congestion_ratio, 0), congestion))
    spark_max = target_kbps * 1000 * 1.25 if target_kbps else None
    return TileView("bitrate", title, level, fmt_bps(actual), lines, series, spark_max, "last 5 min")

"""The upload headroom tile: the last bandwidth test against what the stream needs."""

from __future__ import annotations

from agent.models import HealthSnapshot
from tui.render.levels import level_below
from tui.render.numbers import fmt_bps
from tui.render.tile import TileView, detail_row
from tui.state import DashboardState


def headroom_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    title = "Upload headroom"
    bandwidth = snapshot.bandwidth if snapshot else None
    system = snapshot.system if snapshot else None
    obs = snapshot.obs if snapshot else None
    using = system.upload_bps if system is not None else None
    using_row = detail_row("sending", fmt_bps(using))
    if bandwidth is None or bandwidth.upload_bps is None:
        notes = ["no bandwidth test yet: run a preflight (key 3)"]
        series = state.series["system.upload_bps"]
        return TileView("headroom", title, "nodata", "—", [using_row], series, None, "sending", notes)
    configured_kbps = obs.settings.video_bitrate_kbps if obs is not None and obs.settings is not None else None
    needed_bps = (configured_kbps * 1000) if configured_kbps else using
    lines = [detail_row("tested", fmt_bps(bandwidth.upload_bps))]
    if needed_bps:
        headroom = bandwidth.upload_bps / needed_bps
        level = level_below(headroom, 1.5, 1.1)
        headline = f"{headroom:.1f}x"
        lines.append(detail_row("needs", fmt_bps(needed_bps)))
    else:
        level, headline = "ok", fmt_bps(bandwidth.upload_bps)
    if bandwidth.recommended_video_kbps:
        lines.append(detail_row("advised", f"{bandwidth.recommended_video_kbps} kb/s"))
    lines.append(using_row)
    series = state.series["system.upload_bps"]
    return TileView("headroom", title, level, headline, lines, series, bandwidth.upload_bps, "sending vs measured")

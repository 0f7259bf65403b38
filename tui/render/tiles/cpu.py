"""The CPU tile: the whole machine and the encoder process."""

from __future__ import annotations

from agent.models import HealthSnapshot
from tui.render.levels import level_above
from tui.render.numbers import fmt_pct
from tui.render.tile import TileView, detail_row, nodata_tile
from tui.state import DashboardState


def cpu_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    system = snapshot.system if snapshot else None
    if system is None:
        return nodata_tile("cpu", "CPU", "no system sample yet", "sources.system measures it")
    level = level_above(system.cpu_usage_ratio, 0.8, 0.95)
    lines = [detail_row("system", f"{fmt_pct(system.cpu_usage_ratio, 0)} ({system.cpu_count_logical} cores)")]
    encoder = system.encoder_process
    if encoder is not None and system.encoder_cpu_core_ratio is not None:
        lines.append(detail_row(encoder.kind[:7], f"{fmt_pct(system.encoder_cpu_core_ratio, 0)} of 1 core"))
    else:
        lines.append(detail_row("encoder", "not found"))
    if system.load_average_1m is not None:
        lines.append(detail_row("load 1m", f"{system.load_average_1m:.2f}"))
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

"""The ingest network tile: RTT, jitter and loss to the primary ingest, and the link kind."""

from __future__ import annotations

from agent.models import HealthSnapshot, LinkInfo
from agent.os_features import NOT_AVAILABLE
from tui.render.levels import level_above, worst
from tui.render.numbers import fmt_ms, fmt_pct
from tui.render.tile import TileView, detail_row, nodata_tile
from tui.render.tiles.uplink import uplink_level, uplink_rows
from tui.state import DashboardState


def ingest_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    network = snapshot.network if snapshot else None
    title = "Ingest network"
    if network is None:
        return nodata_tile("ingest", title, "no network source", "set ingest.primary to probe it")
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
    levels = [level for level in (rtt, jitter, loss, uplink_level(snapshot)) if level != "nodata"]
    level = worst(*levels) if levels else "nodata"
    lines = [
        detail_row("jitter", fmt_ms(network.ingest_jitter_ms), jitter),
        detail_row("loss", fmt_pct(network.ingest_loss_ratio, 1), loss),
        detail_row("link", _link_text(network.link)),
        *uplink_rows(snapshot),
    ]
    return TileView(
        "ingest", title, level, fmt_ms(network.ingest_rtt_ms), lines, rtt_series, max(150.0, *rtt_series, 0.0), "RTT"
    )


def _link_text(link: LinkInfo) -> str:
    if link.kind == "unknown" and link.note and NOT_AVAILABLE in link.note:
        return "n/a on this OS"  # the OS has no way to tell (agent/os_features.py)
    return link.kind + (f" {link.wifi_signal_dbm:.0f} dBm" if link.wifi_signal_dbm else "")

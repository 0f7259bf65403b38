"""The relay tile: what the local relay takes in and sends out, its queue, what it dropped and why, and the
ingest connection as the kernel sees it. Hidden when the agent runs no relay (no ingest configured)."""

from __future__ import annotations

from agent.models import HealthSnapshot
from tui.render.levels import Level, level_above, worst
from tui.render.numbers import fmt_bps, fmt_count, fmt_ms
from tui.render.tile import TileView, detail_row
from tui.render.tiles.relay_destinations import (
    destination_level,
    destination_notes,
    destination_row,
    destination_rows_wanted,
)
from tui.state import DashboardState

TITLE = "Relay"


def relay_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    status = snapshot.sources.get("relay") if snapshot else None
    relay = snapshot.relay if snapshot else None
    series = state.series["relay.queue_ms"]
    if relay is None or (status is not None and status.state == "error"):
        if status is None:
            return TileView("relay", TITLE, "nodata", "no relay", hidden=True)
        if status.state == "error":
            return TileView("relay", TITLE, "critical", "NOT LISTENING", notes=[status.error or "the relay failed"])
        return TileView("relay", TITLE, "nodata", "starting")
    destination = relay.destinations[0] if relay.destinations else None
    if not relay.publishing:
        lines = [detail_row("listen", f"rtmp://{relay.listen}/live")]
        if destination is not None:
            lines.append(detail_row("ingest", destination.state))
        return TileView("relay", TITLE, "ok", "IDLE", lines, notes=["point the encoder at the address above"])
    queue_level = level_above(relay.queue_ms, 350, 700)
    drop_level: Level = "critical" if relay.frames_dropped_per_s else "ok"
    ingest_level: Level = "critical" if destination is not None and destination.state != "live" else "ok"
    drops = relay.frames_dropped
    reasons = [f"{name} {count}" for name, count in (("inter", drops.until_keyframe), ("nonref", drops.disposable),
                                                     ("full", drops.queue_full)) if count]  # fmt: skip
    fps = f" {relay.video_fps:.0f} fps" if relay.video_fps is not None else ""
    lines = [
        detail_row("in", fmt_bps(relay.ingress_bps) + fps),
        detail_row("out", fmt_bps(relay.egress_bps), ingest_level if ingest_level != "ok" else None),
        detail_row(
            "dropped",
            fmt_count(relay.frames_dropped_total) + (f" ({', '.join(reasons)})" if reasons else ""),
            drop_level if drop_level != "ok" else None,
        ),
    ]
    if relay.ingest_rtt_ms is not None:
        lines.append(
            detail_row("ingest", f"{fmt_ms(relay.ingest_rtt_ms)} rtx {fmt_count(relay.ingest_retransmits_total)}")
        )
    elif destination is not None and destination.state != "live":
        lines.append(detail_row("ingest", destination.state, ingest_level))
    if destination_rows_wanted(relay):
        lines.extend(destination_row(each) for each in relay.destinations)
        ingest_level = worst(ingest_level, *(destination_level(each) for each in relay.destinations))
    return TileView(
        "relay",
        TITLE,
        worst(queue_level, drop_level, ingest_level),
        f"{fmt_ms(relay.queue_ms)} queued",
        lines,
        series,
        max(700.0, *series, 0.0),
        "queue, 5 min",
        notes=destination_notes(relay),
    )

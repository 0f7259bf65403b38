"""The relay tile: what the local relay takes in and sends out, its queue, what it dropped and why, and the
ingest connection as the kernel sees it. Hidden when the agent runs no relay (no ingest configured)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.models import HealthSnapshot, RelaySample
from agent.models.incidents import Incident
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
_STREAM_STARTS = ("stream_started", "encoder_back")
_STREAM_ENDS = ("stream_ended", "hold_ended")


def relay_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    status = snapshot.sources.get("relay") if snapshot else None
    relay = snapshot.relay if snapshot else None
    series = state.series["relay.queue_ms"]
    if snapshot is None or relay is None or (status is not None and status.state == "error"):
        if status is None or status.state == "starting":  # starting: no ingest yet (agent/relay/standby.py)
            return TileView("relay", TITLE, "nodata", "no relay", hidden=True)
        if status.state == "error":
            return TileView("relay", TITLE, "critical", "NOT LISTENING", notes=[status.error or "the relay failed"])
        return TileView("relay", TITLE, "nodata", "starting")
    if relay.holding:
        return _holding_tile(relay)
    if not relay.publishing:
        return _idle_tile(snapshot, relay)
    return _publishing_tile(snapshot, relay, series)


def _holding_tile(relay: RelaySample) -> TileView:
    """The encoder is gone mid-stream and the relay keeps the ingest's session with the slate: the broadcast
    is on its cover and ends when the countdown does. Never calm."""
    left = f" {relay.hold_remaining_s:.0f}s" if relay.hold_remaining_s is not None else ""
    lines = [
        detail_row("encoder", "LOST", "critical"),
        detail_row("ends in", f"{relay.hold_remaining_s:.0f} s" if relay.hold_remaining_s is not None else "?"),
        detail_row("on air", f"slate, {relay.held_total_s:.0f} s held"),
        detail_row("listen", f"rtmp://{relay.listen}/live"),
    ]
    notes = ["reconnect the encoder to the address above before the hold ends"]
    if relay.slate_note:
        notes.insert(0, relay.slate_note)
    return TileView("relay", TITLE, "critical", f"HOLDING{left}", lines, notes=notes)


def _idle_tile(snapshot: HealthSnapshot, relay: RelaySample) -> TileView:
    lines = [detail_row("listen", f"rtmp://{relay.listen}/live")]
    destination = relay.destinations[0] if relay.destinations else None
    if destination is not None:
        lines.append(detail_row("ingest", destination.state))
    ended = _stream_just_ended(snapshot)
    if ended is not None:
        # The broadcast just died (the encoder went, no hold or the hold ran out): not "OK", say when.
        return TileView("relay", TITLE, "warning", "STOPPED", lines, notes=[f"{ended.at:%H:%M:%S} {ended.text}"])
    return TileView("relay", TITLE, "ok", "IDLE", lines, notes=["point the encoder at the address above"])


def _stream_just_ended(snapshot: HealthSnapshot) -> Incident | None:
    """The newest stream start or end in the last 10 minutes, when it is an end."""
    for incident in snapshot.incidents:  # newest first
        if incident.kind in _STREAM_STARTS:
            return None
        if incident.kind in _STREAM_ENDS:
            return incident
    return None


def _publishing_tile(snapshot: HealthSnapshot, relay: RelaySample, series: Sequence[float]) -> TileView:
    destination = relay.destinations[0] if relay.destinations else None
    queue_level = level_above(relay.queue_ms, 350, 700)
    dropping = bool(relay.frames_dropped_per_s)
    drop_level: Level = "critical" if dropping else "ok"
    ingest_down = relay.ingest_unreachable or (destination is not None and destination.state != "live")
    ingest_level: Level = "critical" if ingest_down else "ok"
    drops = relay.frames_dropped
    reasons = [f"{name} {count}" for name, count in (("inter", drops.until_keyframe), ("nonref", drops.disposable),
                                                     ("full", drops.queue_full), ("lost", drops.ingest_lost))
               if count]  # fmt: skip
    dropped_row = detail_row(
        "dropped",
        fmt_count(relay.frames_dropped_total) + (f" ({', '.join(reasons)})" if reasons else ""),
        drop_level if drop_level != "ok" else None,
    )
    # Most telling first: a short tile keeps the first rows.
    lines = [
        detail_row("in", fmt_bps(relay.ingress_bps)),
        detail_row("out", fmt_bps(relay.egress_bps), ingest_level if ingest_level != "ok" else None),
        dropped_row,
        detail_row("queue", fmt_ms(relay.queue_ms), queue_level if queue_level != "ok" else None),
    ]
    if relay.ingest_rtt_ms is not None:
        lines.append(
            detail_row("ingest", f"RTT {fmt_ms(relay.ingest_rtt_ms)}, rtx {fmt_count(relay.ingest_retransmits_total)}")
        )
    elif destination is not None and destination.state != "live":
        lines.append(detail_row("ingest", destination.state, ingest_level))
    if relay.video_fps is not None:
        lines.append(detail_row("video", f"{relay.video_fps:.0f} fps"))
    if destination_rows_wanted(relay):
        lines.extend(destination_row(each) for each in relay.destinations)
        ingest_level = worst(ingest_level, *(destination_level(each) for each in relay.destinations))
    # The headline names the worst thing the relay knows now, so it never sits calm beside a drop.
    if ingest_down:
        headline = "NO INGEST"
    elif dropping:
        headline = f"DROPPING {relay.frames_dropped_per_s:.0f}/s"
    else:
        headline = f"{fmt_ms(relay.queue_ms)} queued"
    level = worst(queue_level, drop_level, ingest_level, _alert_level(snapshot))
    return TileView(
        "relay", TITLE, level, headline, lines, series, max(700.0, *series, 0.0), "queue, 5 min",
        notes=destination_notes(relay),
    )  # fmt: skip


def _alert_level(snapshot: HealthSnapshot) -> Level:
    """The relay's own alerts still active (a drop alert clears only after 10 calm seconds): the tile
    is never greener than the alert list."""
    level: Level = "ok"
    for alert in snapshot.alerts:
        if alert.id.startswith("relay_") and alert.active:
            level = worst(level, alert.severity)
    return level

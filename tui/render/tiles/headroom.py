"""The upload headroom tile: the best evidence the agent holds of what the uplink carries, against what the
stream needs, and which evidence it is.

The agent picks the evidence (`HealthSnapshot.upload_capacity`: a bandwidth test, the kernel's delivery rate
of a connection that was not app-limited, else what the relay or the encoder carries as a lower bound); the
tile shows that figure, the same one the alerts use, and says where it comes from and how old it is. A lower
bound is written "≥": it proves the link carries at least that much, never that it has room to spare.
"""

from __future__ import annotations

from agent.models import HealthSnapshot
from agent.models.capacity import CapacityEstimate
from tui.render.levels import Level, level_below
from tui.render.numbers import fmt_age, fmt_bps
from tui.render.tile import TileView, detail_row
from tui.state import DashboardState

TITLE = "Upload headroom"
SOURCE_WORDS = {
    "bandwidth_test": "test",
    "kernel_delivery_rate": "kernel",
    "relay_egress": "relay out",
    "encoder_output": "encoder",
}


def capacity_of(snapshot: HealthSnapshot) -> CapacityEstimate | None:
    """The agent's estimate; a snapshot from an agent that does not fill it yet falls back on its last test."""
    if snapshot.upload_capacity is not None:
        return snapshot.upload_capacity
    test = snapshot.bandwidth
    if test is None or test.upload_bps is None:
        return None
    return CapacityEstimate(
        bps=test.upload_bps, source="bandwidth_test", lower_bound=False, measured_at=test.finished_at
    )


def needed_bps(snapshot: HealthSnapshot) -> tuple[float | None, str]:
    """What the stream needs: the encoder's configured bitrate, else what it sends now."""
    obs = snapshot.obs
    if obs is not None and obs.settings is not None and obs.settings.video_bitrate_kbps:
        return obs.settings.video_bitrate_kbps * 1000.0, "needs"
    relay = snapshot.relay
    if relay is not None and relay.publishing and relay.ingress_bps:
        return relay.ingress_bps, "sends"
    if obs is not None and obs.streaming and obs.output_bitrate_bps:
        return obs.output_bitrate_bps, "sends"
    if snapshot.ffmpeg is not None and not snapshot.ffmpeg.ended and snapshot.ffmpeg.bitrate_bps:
        return snapshot.ffmpeg.bitrate_bps, "sends"
    return None, "needs"


def headroom_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    series = state.series["system.upload_bps"]
    using = snapshot.system.upload_bps if snapshot is not None and snapshot.system is not None else None
    capacity = capacity_of(snapshot) if snapshot is not None else None
    if snapshot is None or capacity is None:
        notes = ["no evidence yet: no bandwidth test and nothing sent; run a preflight (key 3)"]
        lines = [detail_row("sending", fmt_bps(using))] if using else []
        return TileView("headroom", TITLE, "nodata", "no data", lines, series, None, "sending", notes)
    age_s = max(0.0, (snapshot.taken_at - capacity.measured_at).total_seconds())
    needed, needed_word = needed_bps(snapshot)
    source = SOURCE_WORDS.get(capacity.source, capacity.source)
    lines = [detail_row("from", f"{source} {fmt_age(age_s)} ago")]
    level: Level
    if capacity.lower_bound:
        # A bound cannot show room to spare: it is what the sender chose to send, so it only says "at least".
        level, headline = "ok", f"≥ {fmt_bps(capacity.bps)}"
        if needed:
            lines.append(detail_row(needed_word, fmt_bps(needed)))
        notes = [capacity.note or "not yet tested: a preflight (key 3) measures the room above it"]
    else:
        headline = fmt_bps(capacity.bps)
        level = "ok"
        if needed:
            ratio = capacity.bps / needed
            level = level_below(ratio, 1.5, 1.1)
            headline = f"{ratio:.1f}x"
            lines.insert(0, detail_row("carries", fmt_bps(capacity.bps)))
            lines.append(detail_row(needed_word, fmt_bps(needed), level if level != "ok" else None))
        else:
            lines.insert(0, detail_row("carries", fmt_bps(capacity.bps)))
        notes = [capacity.note] if capacity.note else []
        if capacity.source == "bandwidth_test" and snapshot.bandwidth is not None:
            advised = snapshot.bandwidth.recommended_video_kbps
            if advised:
                lines.append(detail_row("advised", f"{advised} kb/s video"))
    if using is not None:
        lines.append(detail_row("sending", fmt_bps(using)))
    return TileView("headroom", TITLE, level, headline, lines, series, capacity.bps, "sending vs carries", notes)

"""One row per relay destination for the relay tile: where it goes (host only, never a key), whether it is
live or on a backup, its bit rate, queue and drops. Shown when there is more than one destination, or after
a reconnect or failover, so a plain one-ingest setup keeps its short tile."""

from __future__ import annotations

from rich.text import Text

from agent.models import RelayDestinationSample, RelaySample
from tui.render.levels import Level, level_above, worst
from tui.render.numbers import fmt_bps, fmt_count, fmt_ms
from tui.render.tile import detail_row


def destination_rows_wanted(relay: RelaySample) -> bool:
    destinations = relay.destinations
    return len(destinations) > 1 or any(d.on_backup or d.last_switch is not None for d in destinations)


def destination_level(destination: RelayDestinationSample) -> Level:
    state: Level = "critical" if destination.state in ("retrying", "rejected") else "ok"
    if destination.state == "connecting" or destination.on_backup:
        state = worst(state, "warning")
    return worst(state, level_above(destination.queue_ms, 350, 700))


def destination_row(destination: RelayDestinationSample) -> Text:
    drops = destination.frames_dropped
    dropped = drops.disposable + drops.until_keyframe + drops.queue_full + drops.ingest_lost
    parts = [destination.state, fmt_bps(destination.egress_bps), f"q {fmt_ms(destination.queue_ms)}"]
    if dropped:
        parts.append(f"drop {fmt_count(dropped)}")
    if destination.on_backup and destination.ingest:
        parts.append(f"backup {destination.ingest}")
    switch = destination.last_switch
    if switch is not None:
        parts.append(f"{switch.kind} {switch.at:%H:%M:%S}")
    level = destination_level(destination)
    return detail_row(destination.name, " ".join(parts), level if level != "ok" else None)


def destination_notes(relay: RelaySample) -> list[str]:
    """Why a destination is not taking the stream (its error, already redacted), one line each."""
    return [
        f"{destination.name}: {destination.error}"
        for destination in relay.destinations
        if destination.state != "live" and destination.error
    ]

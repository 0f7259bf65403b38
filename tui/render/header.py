"""The header's words: the stream's state (OFFLINE / LIVE / RECONNECTING), the overall label, alert durations."""

from __future__ import annotations

from datetime import datetime

from agent.models import Alert, HealthSnapshot
from tui.render.levels import Level
from tui.render.numbers import fmt_duration


def stream_state(snapshot: HealthSnapshot | None) -> tuple[str, Level]:
    """OFFLINE / LIVE h:mm:ss / RECONNECTING, from the encoder that knows."""
    if snapshot is None:
        return "NO DATA", "nodata"
    obs, ffmpeg, relay = snapshot.obs, snapshot.ffmpeg, snapshot.relay
    if relay is not None and relay.holding:  # the encoder is gone; the audience sees the slate
        left = f" {relay.hold_remaining_s:.0f}s LEFT" if relay.hold_remaining_s is not None else ""
        return f"ON SLATE{left}", "critical"
    if obs is not None and obs.connection == "connected":
        if obs.reconnecting:
            return "RECONNECTING", "critical"
        if obs.streaming:
            return f"LIVE {fmt_duration(obs.stream_duration_s)}", "ok"
        return "OFFLINE", "nodata"
    if ffmpeg is not None and not ffmpeg.ended:
        return f"LIVE {fmt_duration(ffmpeg.out_time_s)}", "ok"
    if relay is not None and relay.publishing:
        return "LIVE", "ok"
    return "OFFLINE", "nodata"


OVERALL_LABELS = {
    "starting": "STARTING: MEASURING",
    "ok": "HEALTH OK",
    "warning": "HEALTH WARNING",
    "critical": "HEALTH CRITICAL",
}


def alert_duration(alert: Alert, now: datetime) -> str:
    end = alert.cleared_at or now
    return fmt_duration((end - alert.since).total_seconds())

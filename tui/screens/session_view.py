"""How the History screen draws stream sessions: a table row per session, and one session's summary.

Pure functions of the contract's models (tests call them directly); the screen only places them.
"""

from __future__ import annotations

from rich.text import Text

from agent.models import SessionDetail, SessionSummary
from tui.render import badge, fmt_duration

END_WORDS = {
    "stream_stopped": "stream stopped",
    "agent_stopped": "agent stopped",
    "agent_stopped_unexpectedly": "agent killed",
}
CHANGE_LEVELS = {"raised": "critical", "updated": "warning", "cleared": "ok"}


def mbps(bps: float | None) -> str:
    return "—" if bps is None else f"{bps / 1e6:.1f} Mb/s"


def score_badge(score: float | None) -> Text:
    if score is None:
        return Text("—")
    level = "ok" if score >= 90 else "warning" if score >= 70 else "critical"
    return badge(level, f"{score:.0f}")


def ended_label(summary: SessionSummary) -> str:
    if summary.status == "live":
        return "live now"
    return END_WORDS.get(summary.end_reason or "", summary.end_reason or "?")


SESSION_COLUMNS = ("Started UTC", "Live", "Score", "Worst", "Mb/s", "Drops", "Alerts", "Ended")


def session_row(summary: SessionSummary) -> tuple[Text | str, ...]:
    """One row under SESSION_COLUMNS: narrow enough for 80 columns."""
    dropped = sum(drop.frames for drop in summary.frames_dropped)
    return (
        f"{summary.started_at:%m-%d %H:%M}",
        fmt_duration(summary.live_s),
        score_badge(summary.health_score),
        badge(summary.worst_state, summary.worst_state.upper()),
        "—" if summary.output_bitrate_mean_bps is None else f"{summary.output_bitrate_mean_bps / 1e6:.1f}",
        str(dropped),
        str(summary.alerts_raised),
        ended_label(summary),
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def session_text(detail: SessionDetail) -> Text:
    s = detail
    text = Text()
    text.append(s.session_id, style="bold")
    text.append(f"  {s.platform} · {', '.join(s.origins) or '?'} · {ended_label(s)}", style="dim")
    if s.reconstructed:
        text.append("  (rebuilt from the log)", style="yellow")
    text.append("\n")
    if s.end_detail:
        text.append(f"{s.end_detail}\n", style="dim")
    text.append("Health ")
    text.append_text(score_badge(s.health_score))
    parts = ", ".join(f"{p.name} {'—' if p.score is None else f'{p.score:.2f}'}" for p in s.health_parts)
    text.append(f"  {parts}\n", style="dim")
    text.append(
        f"Bitrate  target {mbps(s.target_bitrate_bps)} · mean {mbps(s.output_bitrate_mean_bps)} · "
        f"min {mbps(s.output_bitrate_min_bps)} · p5 {mbps(s.output_bitrate_p5_bps)}\n"
    )
    drops = ", ".join(f"{d.cause} {d.frames} ({_ratio(d.ratio)})" for d in s.frames_dropped) or "no frame counts"
    text.append(f"Dropped  {drops} · reconnects {s.encoder_reconnects} · failovers {s.relay_failovers}\n")
    text.append(
        f"Network  RTT p50 {_ms(s.rtt_p50_ms)} p95 {_ms(s.rtt_p95_ms)} · jitter p95 {_ms(s.jitter_p95_ms)} · "
        f"loss mean {_ratio(s.loss_mean_ratio)} max {_ratio(s.loss_max_ratio)}\n"
    )
    text.append(f"CPU      mean {_ratio(s.cpu_mean_ratio)} · max {_ratio(s.cpu_max_ratio)}\n")
    if s.longest_outage is not None:
        outage = s.longest_outage
        text.append(f"Longest outage {fmt_duration(outage.duration_s)} at {outage.start:%H:%M:%S}", style="yellow")
        text.append(f" (all outages {fmt_duration(s.outage_s)})\n")
    if s.worst_minute is not None:
        minute = s.worst_minute
        text.append(f"Worst minute {minute.start:%H:%M} UTC: score {minute.score:.0f}, {minute.worst_state}\n")
    ticks_style = "" if s.ticks_written >= s.ticks_expected else "yellow"
    text.append(f"Ticks {s.ticks_written} written / {s.ticks_expected} expected\n", style=ticks_style)
    if not s.alerts_timeline:
        text.append("No alert during this session.", style="green")
        return text
    if s.alerts_truncated:
        text.append("(only the newest alert changes are listed)\n", style="dim")
    for entry in s.alerts_timeline:
        level = CHANGE_LEVELS[entry.change] if entry.change != "raised" else entry.severity
        text.append(f"{entry.at:%H:%M:%S} ")
        text.append_text(badge(level, entry.change.upper()))
        text.append(f" {entry.message}\n")
    return text

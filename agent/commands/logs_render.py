"""How `streamhealth logs` prints sessions for people: Rich tables, units spelled out, nothing hidden.

Only the terminal command imports this (Rich is not loaded by the agent process).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.models import SessionDetail, SessionSummary

STATE_STYLES = {"ok": "green", "warning": "yellow", "critical": "bold red", "live": "bold cyan"}
END_WORDS = {
    "stream_stopped": "stream stopped",
    "agent_stopped": "agent stopped",
    "agent_stopped_unexpectedly": "agent killed",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def mbps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps / 1e6:.2f} Mb/s"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def score_text(score: float | None) -> Text:
    if score is None:
        return Text("-")
    style = "green" if score >= 90 else "yellow" if score >= 70 else "bold red"
    return Text(f"{score:.0f}", style=style)


def ended_text(summary: SessionSummary) -> Text:
    if summary.status == "live":
        return Text("live now", style=STATE_STYLES["live"])
    word = END_WORDS.get(summary.end_reason or "", summary.end_reason or "?")
    return Text(word, style="bold red" if summary.end_reason == "agent_stopped_unexpectedly" else "")


def print_list(console: Console, sessions: list[SessionSummary], directory: Path) -> None:
    if not sessions:
        console.print(f"No stream sessions in {directory} yet: a session starts when a stream goes live.")
        return
    table = Table(title=f"Stream sessions in {directory}", title_justify="left")
    for column in (
        "ID",
        "Started (UTC)",
        "Live",
        "Platform",
        "Score",
        "Worst",
        "Bitrate mean",
        "Dropped",
        "Alerts",
        "Ticks",
        "Ended",
    ):
        table.add_column(column, no_wrap=column in ("ID", "Started (UTC)"))
    for summary in sessions:
        dropped = sum(drop.frames for drop in summary.frames_dropped)
        ticks = f"{summary.ticks_written}/{summary.ticks_expected}"
        table.add_row(
            summary.session_id,
            f"{summary.started_at:%Y-%m-%d %H:%M:%S}",
            duration(summary.live_s),
            summary.platform,
            score_text(summary.health_score),
            Text(summary.worst_state, style=STATE_STYLES[summary.worst_state]),
            mbps(summary.output_bitrate_mean_bps),
            str(dropped),
            str(summary.alerts_raised),
            Text(ticks, style="" if summary.ticks_written >= summary.ticks_expected else "yellow"),
            ended_text(summary),
        )
    console.print(table)


def print_summary(console: Console, detail: SessionDetail, *, timeline: bool) -> None:
    s = detail
    title = Text(f"Session {s.session_id}", style="bold")
    if s.reconstructed:
        title.append("  (rebuilt from the log)", style="yellow")
    console.print(title)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    end = f"{s.ended_at:%Y-%m-%d %H:%M:%S}" if s.ended_at else "-"
    rows: list[tuple[str, str | Text]] = [
        ("started", f"{s.started_at:%Y-%m-%d %H:%M:%S} UTC  ({', '.join(s.origins) or '?'})"),
        ("ended", Text.assemble(f"{end}  ", ended_text(s), f"  {s.end_detail}" if s.end_detail else "")),
        ("live", duration(s.live_s)),
        ("platform", s.platform),
        (
            "bitrate",
            f"target {mbps(s.target_bitrate_bps)} · mean {mbps(s.output_bitrate_mean_bps)} · "
            f"min {mbps(s.output_bitrate_min_bps)} · p5 {mbps(s.output_bitrate_p5_bps)}",
        ),
        (
            "frames dropped",
            ", ".join(f"{d.cause} {d.frames} of {d.of_frames} ({ratio(d.ratio)})" for d in s.frames_dropped)
            or "no frame counts",
        ),
        ("reconnects", f"encoder {s.encoder_reconnects} · relay failovers {s.relay_failovers}"),
        (
            "network",
            f"RTT p50 {ms(s.rtt_p50_ms)} · p95 {ms(s.rtt_p95_ms)} · jitter p95 {ms(s.jitter_p95_ms)} · "
            f"loss mean {ratio(s.loss_mean_ratio)} · max {ratio(s.loss_max_ratio)}",
        ),
        ("CPU", f"mean {ratio(s.cpu_mean_ratio)} · max {ratio(s.cpu_max_ratio)}"),
        ("alerts", ", ".join(f"{a.kind} {a.severity} x{a.raised}" for a in s.alerts) or "none"),
        ("worst state", Text(s.worst_state, style=STATE_STYLES[s.worst_state])),
    ]
    if s.longest_outage is not None:
        outage = s.longest_outage
        rows.append(
            (
                "longest outage",
                f"{duration(outage.duration_s)} from {outage.start:%H:%M:%S} (all outages {duration(s.outage_s)})",
            )
        )
    else:
        rows.append(("longest outage", "none"))
    if s.worst_minute is not None:
        minute = s.worst_minute
        rows.append(
            (
                "worst minute",
                f"{minute.start:%H:%M} UTC: score {minute.score:.0f}, {minute.worst_state}, "
                f"{mbps(minute.mean_output_bitrate_bps)}, {minute.frames_dropped} dropped",
            )
        )
    parts = " · ".join(f"{p.name} {'-' if p.score is None else f'{p.score:.2f}'}x{p.weight:g}" for p in s.health_parts)
    rows.append(("health score", Text.assemble(score_text(s.health_score), f"  ({parts})")))
    ticks_style = "" if s.ticks_written >= s.ticks_expected else "yellow"
    rows.append(("ticks", Text(f"{s.ticks_written} written / {s.ticks_expected} expected", style=ticks_style)))
    if s.run_id:
        rows.append(("agent run", s.run_id))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if not timeline:
        return
    console.print(Text("\nAlert timeline", style="bold"))
    if not s.alerts_timeline:
        console.print(Text("No alert during this session.", style="green"))
    if s.alerts_truncated:
        console.print(Text("(only the newest alert changes are listed)", style="dim"))
    for entry in s.alerts_timeline:
        style = STATE_STYLES[entry.severity] if entry.change != "cleared" else "green"
        console.print(Text.assemble(f"{entry.at:%H:%M:%S} ", (f"{entry.change:<8}", style), f" {entry.message}"))

"""A deterministic fleet as the collector serves it: agents in every state, for Pilot tests and snapshots."""

from __future__ import annotations

from datetime import timedelta

from agent.models import Alert
from collector.fleet import lost_contact_alert
from collector.models import AlertBrief, FleetRow, FleetView
from tests.tui.data import NOW


def row(name: str, state: str = "live", **fields: object) -> FleetRow:
    live = state in ("live", "degraded") or fields.get("was_live") is True
    base: dict[str, object] = {
        "agent_id": f"id-{name}",
        "name": name,
        "stream_state": state,
        "was_live": live,
        "overall": "ok",
        "platform": "twitch",
        "version": "0.1.0",
        "live_s": 3725.0 if live else None,
        "output_bitrate_bps": 5_900_000.0 if live else None,
        "target_bitrate_bps": 6_160_000.0,
        "dropped_last_minute": {"network": 0, "encoding": 0, "rendering": 0} if live else {},
        "rtt_ms": 38.0,
        "loss_ratio": 0.0,
        "cpu_ratio": 0.41,
        "lines_waiting": 0,
        "last_seen": NOW - timedelta(seconds=1),
        "silent_s": 1.0,
        "interval_s": 1.0,
    }
    base.update(fields)
    return FleetRow.model_validate(base)


def brief(kind: str, severity: str = "critical", message: str = "") -> AlertBrief:
    return AlertBrief(id=kind, kind=kind, severity=severity, message=message or kind, since=NOW)


def fleet(extra: int = 0) -> FleetView:
    rows = [
        row("studio-a"),
        row(
            "studio-b",
            "degraded",
            overall="critical",
            output_bitrate_bps=3_100_000.0,
            dropped_last_minute={"network": 212, "encoding": 3, "rendering": 0},
            rtt_ms=182.0,
            loss_ratio=0.06,
            worst_alert=brief("frames_dropped_network"),
            alerts_active=2,
            lines_waiting=4,
        ),
        row("van-cam", "lost_contact", was_live=True, silent_s=14.0, last_seen=NOW - timedelta(seconds=14)),
        row("rehearsal", "preflight", worst_alert=brief("cpu_high", "warning"), alerts_active=1, cpu_ratio=0.93),
        row("spare-laptop", "offline", platform="youtube", version="0.0.9", cpu_ratio=0.05),
        row("tiktok-phone-rig", platform="tiktok", output_bitrate_bps=2_400_000.0, target_bitrate_bps=2_500_000.0),
    ]
    rows += [row(f"extra-{index:03d}", platform="youtube") for index in range(extra)]
    alerts: list[Alert] = [lost_contact_alert(r) for r in rows if r.stream_state == "lost_contact"]
    return FleetView(taken_at=NOW, agents=rows, alerts=alerts)

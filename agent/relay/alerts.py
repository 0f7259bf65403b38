"""A reconnect or failover toward an ingest, as an alert: one per switch, with its timestamps and losses.

Threshold alerts come from the rule engine (configs/rules.toml); a switch is an event, not a condition
that holds, so the runtime raises one alert per `IngestSwitch` the relay reports. Not for deciding anything.
"""

from __future__ import annotations

from agent.models import Alert, IngestSwitch, Suggestion

_WHAT = {"reconnect": "reconnected to", "failover": "failed over to", "return": "went back to the primary"}


def switch_alert(switch: IngestSwitch) -> Alert:
    where = switch.to_ingest if switch.kind != "return" else f"{switch.to_ingest} (return)"
    lost = (
        f"lost {switch.lost_media_ms:.0f} ms of media ({switch.lost_frames} frames)"
        if switch.lost_frames
        else "no media lost"
    )
    message = (
        f"Relay {_WHAT[switch.kind]} {where} at {switch.at:%H:%M:%S.%f}"[:-3]
        + f" UTC, {switch.outage_ms:.0f} ms after losing {switch.from_ingest} at {switch.lost_at:%H:%M:%S.%f}"[:-3]
        + f" UTC ({switch.reason}); {lost}. The encoder stayed connected."
    )
    suggestions = []
    if switch.kind == "failover":
        suggestions.append(
            Suggestion(
                text="Check the primary ingest's status page and your route to it",
                why="the stream now goes to a backup ingest; set relay.return_to_primary to come back on its own",
            )
        )
    return Alert(
        id=f"relay_ingest_{switch.kind}:{switch.destination}:{switch.at.isoformat()}",
        kind="ingest_switched",
        # The stream goes on either way: critical only when viewers lost something.
        severity="critical" if switch.lost_frames else "warning",
        message=message,
        since=switch.lost_at,
        updated_at=switch.at,
        value=switch.lost_media_ms,
        suggestions=suggestions,
    )

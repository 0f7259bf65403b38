"""The incident timeline: what happened during a stream, one line per event, for a technician after a hiccup.

Written by the runtime from what it already judges (alerts raised and cleared, the uplink's early warning,
relay drops, ingest switches, the encoder lost and held); read by the API's snapshot and the TUI's strip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.base import Contract

IncidentKind = Literal[
    "link_slowed",
    "link_back",
    "alert_raised",
    "alert_cleared",
    "relay_dropping",
    "relay_drops_ended",
    "failover",
    "reconnect",
    "encoder_lost",
    "encoder_back",
    "hold_ended",
    "stream_started",
    "stream_ended",
]


class Incident(Contract):
    at: datetime = Field(description="When it happened (UTC).")
    kind: IncidentKind
    severity: Literal["info", "warning", "critical"] = "info"
    text: str = Field(description="One line, with its numbers: 'uplink slowed: 1.2 Mb/s for 2.6 Mb/s sent'.")


class IncidentList(Contract):
    """The agent's whole run (GET /api/v1/incidents): the History screen's incident timeline."""

    incidents: list[Incident] = Field(description="Newest first.")
    since: datetime = Field(description="When the agent started: the list covers the run from then.")
    let_go: int = Field(0, description="Older incidents no longer kept (the list is bounded).")

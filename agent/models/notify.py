"""The body of the generic JSON webhook: what a team's own tooling receives when an alert changes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.alerts import Alert
from agent.models.base import SCHEMA_VERSION, Contract


class NotifiedAlert(Contract):
    change: Literal["raised", "escalated", "cleared"]
    alert: Alert
    changes_folded: int = Field(1, description="Changes of this alert folded into this line (>2: flapping).")
    span_s: float = Field(0.0, description="Seconds between the first and the last folded change.")
    summary: str = Field(description="One human line: state, severity, what is wrong, with numbers.")
    first_step: str | None = Field(None, description="The backup plan's first step, when the alert has one.")


class AlertNotification(Contract):
    type: Literal["streamhealth.alerts"] = "streamhealth.alerts"
    schema_version: int = SCHEMA_VERSION
    agent_name: str
    sent_at: datetime
    alerts: list[NotifiedAlert]

"""Alerts and the backup plans they carry: the product's voice."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.base import Contract

Severity = Literal["warning", "critical"]
# "starting": no alert, and the sources have not all reported yet; an agent must not say "ok" before it measured.
OverallState = Literal["starting", "ok", "warning", "critical"]


class Suggestion(Contract):
    """A backup plan: what to do, why, and whether the agent does it itself."""

    text: str
    why: str
    automatic: bool = False


class Alert(Contract):
    id: str = Field(description="Stable across updates of the same alert: the rule name plus the target.")
    kind: str
    severity: Severity
    message: str = Field(description="What is wrong, with the measured numbers.")
    since: datetime
    updated_at: datetime | None = None
    cleared_at: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.cleared_at is None


class AlertChange(Contract):
    change: Literal["raised", "updated", "cleared"]
    alert: Alert


def overall_state(alerts: list[Alert], *, measured: bool = True) -> OverallState:
    """The worst active alert; without one, "ok" once `measured` (every source has reported), else "starting"."""
    severities = {alert.severity for alert in alerts if alert.active}
    if "critical" in severities:
        return "critical"
    if "warning" in severities:
        return "warning"
    return "ok" if measured else "starting"

"""Rules turn snapshots into alerts. The runtime depends only on the `RuleEvaluator` protocol below;
the rule engine (thresholds, durations, hysteresis, trends) and the playbook plug in through it."""

from __future__ import annotations

from typing import Protocol

from agent.history import History
from agent.models import Alert, AlertChange, HealthSnapshot


class RuleEvaluator(Protocol):
    def evaluate(
        self, snapshot: HealthSnapshot, history: History, monotonic_s: float | None = None
    ) -> list[AlertChange]:
        """Compare the new snapshot with the rules; return what was raised, updated or cleared.
        `monotonic_s`: the agent's monotonic clock now, for durations and windows."""
        ...

    def active_alerts(self) -> list[Alert]:
        """Alerts currently raised, most severe first."""
        ...

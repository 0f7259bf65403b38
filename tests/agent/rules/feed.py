"""Feeding the rule engine synthetic time series: snapshots at chosen times, history recorded the way
the runtime records it (each sample's metrics at its `taken_at`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.history import History
from agent.models import AgentInfo, AlertChange, HealthSnapshot, Sample
from agent.net.capacity import CapacityTracker
from agent.platforms import load_preset
from agent.rules.config import RuleSet, RuleSpec
from agent.rules.derived import StreamTarget
from agent.rules.engine import RuleEngine
from agent.rules.playbook import load_playbook

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def rule_set(*rules: RuleSpec, platform: str = "custom") -> RuleSet:
    return RuleSet(tuple(rules), load_playbook(), load_preset(platform))


class Feed:
    def __init__(self, engine: RuleEngine, backups: list[str] | None = None) -> None:
        self.engine = engine
        self.history = History(capacity=3600)
        self.backups = backups or []
        self.changes: list[tuple[float, AlertChange]] = []
        self.capacity = CapacityTracker()  # as the runtime: what the uplink carries goes into the snapshot

    @classmethod
    def with_rules(cls, *rules: RuleSpec, target: StreamTarget | None = None, **kwargs: Any) -> Feed:
        return cls(RuleEngine(rule_set(*rules), target), **kwargs)

    def step(self, t: float, **samples: Sample | None) -> list[AlertChange]:
        taken_at = at(t)
        for sample in samples.values():
            if sample is not None:
                self.history.record(sample.taken_at.timestamp(), sample.metrics())
        snapshot = HealthSnapshot(
            taken_at=taken_at,
            agent=AgentInfo(
                version="test", pid=1, started_at=T0, uptime_s=t, platform="custom", ingest_backups=self.backups
            ),
            overall="ok",
            sources={},
            **{name: sample for name, sample in samples.items() if sample is not None},
        )
        snapshot = snapshot.model_copy(update={"upload_capacity": self.capacity.update(snapshot, t)})
        changes = self.engine.evaluate(snapshot, self.history)
        self.changes.extend((t, change) for change in changes)
        return changes

    def events(self, rule: str | None = None) -> list[tuple[float, str, str]]:
        """(time, change, severity) of the changes so far, optionally of one alert id."""
        return [
            (t, change.change, change.alert.severity)
            for t, change in self.changes
            if rule is None or change.alert.id == rule
        ]

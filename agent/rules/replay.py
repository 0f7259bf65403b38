"""Replaying recorded snapshots (a health log, a recorded timeline) through a rule engine: when each alert was
raised, changed severity and cleared, as the agent would have said it. `streamhealth rules test` prints it and
checks it against expectations (like `promtool test rules`); the suite pins the alerts' lifecycle with it.

The replay does what the runtime does each tick: the samples go into the history at their own time, the
capacity estimate is taken again (agent/net/capacity.py), the engine judges on the snapshots' own clock.
Nothing here reads files; see agent/commands/rules_cmd.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.history import History
from agent.models import Alert, HealthSnapshot, Sample
from agent.net.capacity import CapacityTracker
from agent.rules.engine import RuleEngine

_SAMPLE_FIELDS = ("system", "network", "obs", "ffmpeg", "uplink", "relay")


@dataclass(frozen=True)
class ReplayEvent:
    at_s: float  # seconds since the first snapshot
    change: Literal["raised", "updated", "cleared"]
    alert: Alert


@dataclass
class Replay:
    events: list[ReplayEvent] = field(default_factory=list)
    duration_s: float = 0.0
    ticks: int = 0
    active_at_end: list[Alert] = field(default_factory=list)

    def intervals(self, alert_id: str) -> list[tuple[float, float | None, str]]:
        """(raised at, cleared at or None, worst severity) of each time the alert was active."""
        spans: list[tuple[float, float | None, str]] = []
        start: float | None = None
        worst = "warning"
        for event in self.events:
            if event.alert.id != alert_id:
                continue
            if event.change == "raised":
                start, worst = event.at_s, event.alert.severity
            elif start is not None:
                worst = "critical" if event.alert.severity == "critical" else worst
                if event.change == "cleared":
                    spans.append((start, event.at_s, worst))
                    start = None
        if start is not None:
            spans.append((start, None, worst))
        return spans


def replay(snapshots: Iterable[HealthSnapshot], engine: RuleEngine) -> Replay:
    history = History(capacity=3600)
    capacity = CapacityTracker()
    result = Replay()
    first: float | None = None
    for snapshot in snapshots:
        t = snapshot.taken_at.timestamp()
        first = t if first is None else first
        for name in _SAMPLE_FIELDS:
            sample = getattr(snapshot, name)
            if isinstance(sample, Sample):
                history.record(sample.taken_at.timestamp(), sample.metrics())
        snapshot = snapshot.model_copy(update={"upload_capacity": capacity.update(snapshot, t), "alerts": []})
        for change in engine.evaluate(snapshot, history):
            result.events.append(ReplayEvent(round(t - first, 3), change.change, change.alert))
        result.ticks += 1
        result.duration_s = t - first
    result.active_at_end = engine.active_alerts()
    return result


# --- expectations ----------------------------------------------------------------------------------


class Expectation(BaseModel):
    """One expectation of a rules test file ([[expect]] tables). Times are seconds since the first snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert: str | None = Field(None, description="A rule name: the expectation is about this alert.")
    raised_between_s: tuple[float, float] | None = Field(None, description="It is raised within this window.")
    cleared_by_s: float | None = Field(None, description="Every time it was active, it cleared by then.")
    severity: Literal["warning", "critical"] | None = Field(None, description="With raised_between_s: at least.")
    quiet_between_s: tuple[float, float] | None = Field(
        None, description="No alert (or not this one) is active anywhere in this window."
    )
    kinds: list[str] = Field(default_factory=list, description="With quiet_between_s: only alerts of these kinds.")
    min_severity: Literal["warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _check(self) -> Expectation:
        if self.quiet_between_s is None and self.alert is None:
            raise ValueError("an expectation names an `alert`, or is a `quiet_between_s` window")
        if (
            self.alert is not None
            and self.raised_between_s is None
            and self.cleared_by_s is None
            and (self.quiet_between_s is None)
        ):
            raise ValueError(f"expectation for {self.alert!r}: say raised_between_s, cleared_by_s or quiet_between_s")
        return self


class RulesTest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expect: list[Expectation] = Field(default_factory=list)


def check(result: Replay, test: RulesTest, kinds_of: dict[str, str]) -> list[str]:
    """What did not happen as expected, one sentence each (empty: all did)."""
    failures: list[str] = []
    for expectation in test.expect:
        failures.extend(_check_one(result, expectation, kinds_of))
    return failures


def _check_one(result: Replay, expectation: Expectation, kinds_of: dict[str, str]) -> list[str]:
    failures: list[str] = []
    rank = {"warning": 1, "critical": 2}
    if expectation.quiet_between_s is not None:
        start, end = expectation.quiet_between_s
        ids = {event.alert.id for event in result.events}
        for alert_id in sorted(ids):
            if expectation.alert is not None and alert_id != expectation.alert:
                continue
            if expectation.kinds and kinds_of.get(alert_id) not in expectation.kinds:
                continue
            for raised, cleared, worst in result.intervals(alert_id):
                overlaps = raised < end and (cleared is None or cleared > start)
                if overlaps and rank[worst] >= rank[expectation.min_severity]:
                    until = "the end" if cleared is None else f"{cleared:.1f} s"
                    failures.append(
                        f"{alert_id} ({worst}) was active from {raised:.1f} s to {until}, "
                        f"inside the quiet window {start:g}-{end:g} s"
                    )
    if expectation.alert is None:
        return failures
    spans = result.intervals(expectation.alert)
    if expectation.raised_between_s is not None:
        start, end = expectation.raised_between_s
        hits = [
            (raised, worst)
            for raised, _, worst in spans
            if start <= raised <= end and (expectation.severity is None or rank[worst] >= rank[expectation.severity])
        ]
        if not hits:
            seen = ", ".join(f"{raised:.1f} s" for raised, _, _ in spans) or "never"
            failures.append(f"{expectation.alert} was not raised between {start:g} and {end:g} s (raised: {seen})")
    if expectation.cleared_by_s is not None:
        for raised, cleared, _ in spans:
            if raised <= expectation.cleared_by_s and (cleared is None or cleared > expectation.cleared_by_s):
                when = "never cleared" if cleared is None else f"cleared at {cleared:.1f} s"
                failures.append(
                    f"{expectation.alert} raised at {raised:.1f} s {when}, expected by {expectation.cleared_by_s:g} s"
                )
    return failures


def describe(result: Replay) -> list[dict[str, Any]]:
    """The events as plain rows (for --json)."""
    return [
        {
            "at_s": event.at_s,
            "change": event.change,
            "id": event.alert.id,
            "kind": event.alert.kind,
            "severity": event.alert.severity,
            "value": event.alert.value,
            "message": event.alert.message,
        }
        for event in result.events
    ]

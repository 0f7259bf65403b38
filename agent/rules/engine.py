"""The rule engine: thresholds, durations, hysteresis and trends over the snapshots, as alerts.

Each rule (configs/rules.toml, see config.py) is evaluated once per tick. An alert is raised only
after its condition has held for `for_s`, is then updated in place (never raised again while active),
escalates or de-escalates only after the new severity has held for its duration, and clears only
after the value has been back past the clear threshold (hysteresis) for `clear_for_s`. Trend rules
compare the slope of the metric's recent history instead of its value, so they speak while things
get worse, before frames are dropped. Times are the snapshots' own (`taken_at`), so the engine is
deterministic under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Literal

from agent.history import History
from agent.models import Alert, AlertChange, HealthSnapshot, Severity, Suggestion
from agent.rules.config import RuleSet, RuleSpec, load_rule_set
from agent.rules.derived import DerivedCalculator, StreamTarget, stream_target
from agent.rules.playbook import PlanContext
from agent.rules.templates import fill
from agent.settings import Settings

# While an alert is active its numbers change every tick; the snapshot shows them at once, but an
# `updated` change (event stream, health log) is emitted only when the severity changes or, at most
# this often, when its suggestions changed.
UPDATE_EVENTS_EVERY_S = 10.0
_SEVERITY_RANK = {"warning": 1, "critical": 2}
Value = float | str | None


@dataclass
class _RuleState:
    alert: Alert | None = None
    past_since: dict[Severity, float | None] = field(default_factory=lambda: {"warning": None, "critical": None})
    back_since: float | None = None  # value back past the clear threshold since
    below_critical_since: float | None = None
    last_event_at: float = 0.0
    emitted_suggestions: list[Suggestion] = field(default_factory=list)


class RuleEngine:
    """Implements `agent.rules.RuleEvaluator`."""

    def __init__(
        self,
        rule_set: RuleSet,
        target: StreamTarget | None = None,
        *,
        brb_scene: str | None = None,
        history_capacity: int = 600,
    ) -> None:
        self.rules = rule_set.rules
        self._path_parts: dict[str, tuple[str, ...]] = {}
        self.playbook = rule_set.playbook
        self.preset = rule_set.preset
        self.target = target or StreamTarget()
        self.brb_scene = brb_scene
        self.derived_calculator = DerivedCalculator(self.target, self.preset)
        self.derived_history = History(capacity=history_capacity, max_metrics=64)
        self.derived: dict[str, float] = {}
        self._states: dict[str, _RuleState] = {rule.name: _RuleState() for rule in self.rules}
        self._monotonic = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RuleEngine:
        target = stream_target(settings)
        capacity = max(60, int(600 / settings.sampling.interval_s))
        return cls(load_rule_set(settings), target, brb_scene=brb_scene_of(settings), history_capacity=capacity)

    # --- RuleEvaluator ----------------------------------------------------------------------------

    def active_alerts(self) -> list[Alert]:
        alerts = [state.alert for state in self._states.values() if state.alert is not None]
        return sorted(alerts, key=lambda alert: (-_SEVERITY_RANK[alert.severity], alert.since))

    def evaluate(
        self, snapshot: HealthSnapshot, history: History, monotonic_s: float | None = None
    ) -> list[AlertChange]:
        # Durations (for_s, clear_for_s) and trend windows on the monotonic clock when the caller
        # gives it (the agent does): a wall clock set back an hour must not hold every alert back an
        # hour. Without it (replays, tests), the snapshot's time.
        now = snapshot.taken_at.timestamp() if monotonic_s is None else monotonic_s
        self._monotonic = monotonic_s is not None
        self.derived = self.derived_calculator.compute(snapshot)
        self.derived_history.record(now, {f"derived.{name}": value for name, value in self.derived.items()})
        context: PlanContext | None = None
        changes: list[AlertChange] = []
        for rule in self.rules:
            state = self._states[rule.name]
            value = self._measure(rule, snapshot, history, now)
            if value is not None and not self._applies(rule, snapshot):
                value = None
            step = self._step(rule, state, value, now)
            if step is None:
                continue
            if step == "cleared":
                assert state.alert is not None
                cleared = state.alert.model_copy(
                    update={"cleared_at": snapshot.taken_at, "updated_at": snapshot.taken_at}
                )
                self._states[rule.name] = _RuleState()
                changes.append(AlertChange(change="cleared", alert=cleared))
                continue
            if context is None:
                context = self.plan_context(snapshot)
            if step.startswith("raised_"):
                severity: Severity = "critical" if step == "raised_critical" else "warning"
                state.alert = self._alert(rule, severity, value, snapshot, context, since=snapshot.taken_at)
                change: Literal["raised", "updated"] = "raised"
            else:
                assert state.alert is not None
                severity = {"escalate": "critical", "deescalate": "warning"}.get(step, state.alert.severity)  # type: ignore[assignment]
                previous = state.alert
                state.alert = self._alert(rule, severity, value, snapshot, context, since=previous.since)
                if step == "refresh" and (
                    state.alert.suggestions == state.emitted_suggestions
                    or now - state.last_event_at < UPDATE_EVENTS_EVERY_S
                ):
                    continue
                change = "updated"
            state.last_event_at = now
            state.emitted_suggestions = state.alert.suggestions
            changes.append(AlertChange(change=change, alert=state.alert))
        return changes

    # --- measuring --------------------------------------------------------------------------------

    def _measure(self, rule: RuleSpec, snapshot: HealthSnapshot, history: History, now: float) -> Value:
        if rule.trend_window_s is None:
            return self.resolve(rule.metric, snapshot)
        current = self.resolve(rule.metric, snapshot)
        if not isinstance(current, float):
            return None
        if rule.trend_min_value is not None and current < rule.trend_min_value:
            return 0.0  # still low: whatever the slope, nothing to warn about yet
        series = history.series(rule.metric)
        if series is not None:
            points = series.recent(since=now - rule.trend_window_s, monotonic=self._monotonic)
        else:
            derived = self.derived_history.series(rule.metric)  # recorded at `now`, whichever clock
            if derived is None:
                return None
            points = derived.recent(since=now - rule.trend_window_s)
        return slope_per_s(points, rule.trend_window_s)

    def resolve(self, path: str, snapshot: HealthSnapshot) -> Value:
        """The current value at a dotted path: numbers (booleans as 1 / 0) as float, names as str."""
        parts = self._path_parts.get(path)
        if parts is None:  # each rule asks for the same few paths every tick: split each once
            parts = self._path_parts[path] = tuple(path.split("."))
        if parts[0] == "derived":
            return self.derived.get(parts[1])
        node: Any = snapshot
        for part in parts:
            if node is None:
                return None
            node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if isinstance(node, bool):
            return 1.0 if node else 0.0
        if isinstance(node, int | float):
            return float(node) if math.isfinite(node) else None
        if isinstance(node, str):
            return node
        return None

    def _applies(self, rule: RuleSpec, snapshot: HealthSnapshot) -> bool:
        for path in rule.when:
            value = self.resolve(path, snapshot)
            if not value or value == "0":
                return False
        for path in rule.unless:
            value = self.resolve(path, snapshot)
            if value:
                return False
        return True

    # --- the state machine ------------------------------------------------------------------------

    def _past(self, rule: RuleSpec, value: Value, threshold: float | None) -> bool:
        """Is the value past `threshold` on the bad side (for boolean-like rules: does it match)?"""
        if rule.comparison == "is_true":
            return bool(value)
        if rule.comparison == "is_false":
            return value is not None and not value
        if rule.comparison == "in":
            return str(value) in rule.values
        if rule.comparison == "not_in":
            return str(value) not in rule.values
        if threshold is None or not isinstance(value, float):
            return False
        return value > threshold if rule.comparison == "above" else value < threshold

    def _back(self, rule: RuleSpec, value: Value) -> bool:
        """Is the value back past the clear threshold (the good side, with hysteresis)?"""
        if rule.comparison not in ("above", "below"):
            return not self._past(rule, value, None)
        clear = rule.clear_threshold
        assert clear is not None and isinstance(value, float)
        return value <= clear if rule.comparison == "above" else value >= clear

    def _severity_now(self, rule: RuleSpec, value: Value) -> Severity | None:
        if rule.comparison not in ("above", "below"):
            return rule.severity if self._past(rule, value, None) else None
        if self._past(rule, value, rule.critical):
            return "critical"
        if self._past(rule, value, rule.warning):
            return "warning"
        return None

    def _step(self, rule: RuleSpec, state: _RuleState, value: Value, now: float) -> str | None:
        """Advance one rule by one tick; return 'raised' / 'updated' / 'cleared' / 'refresh' or None."""
        if value is None or (rule.comparison in ("above", "below") and not isinstance(value, float)):
            # Not measured (source absent, rule not applicable): nothing can be raised; an active alert
            # clears once it has gone unmeasured for its clear duration.
            state.past_since = {"warning": None, "critical": None}
            state.below_critical_since = None
            if state.alert is None:
                return None
            state.back_since = now if state.back_since is None else state.back_since
            return "cleared" if now - state.back_since >= rule.clear_duration_s else None

        severity = self._severity_now(rule, value)
        critical_now = severity == "critical"
        warning_now = severity is not None
        state.past_since["critical"] = (state.past_since["critical"] or now) if critical_now else None
        state.past_since["warning"] = (state.past_since["warning"] or now) if warning_now else None

        def held(level: Severity) -> bool:
            since = state.past_since[level]
            return since is not None and now - since >= rule.for_s

        if state.alert is None:
            if held("critical"):
                state.back_since = state.below_critical_since = None
                return "raised_critical"
            if held("warning"):
                state.back_since = state.below_critical_since = None
                return "raised_warning"
            return None

        if self._back(rule, value):
            state.back_since = now if state.back_since is None else state.back_since
            if now - state.back_since >= rule.clear_duration_s:
                return "cleared"
        else:
            state.back_since = None

        if state.alert.severity == "warning" and held("critical"):
            return "escalate"
        if state.alert.severity == "critical" and rule.comparison in ("above", "below"):
            if self._below_critical_clear(rule, value):
                state.below_critical_since = now if state.below_critical_since is None else state.below_critical_since
                if now - state.below_critical_since >= rule.clear_duration_s:
                    state.below_critical_since = None
                    return "deescalate"
            else:
                state.below_critical_since = None
        return "refresh"

    def _below_critical_clear(self, rule: RuleSpec, value: Value) -> bool:
        """Back from critical to warning needs a hysteresis margin too: half the one clearing needs."""
        if rule.critical is None or rule.warning is None or not isinstance(value, float):
            return False
        clear = rule.clear_threshold
        assert clear is not None
        margin = abs(rule.warning - clear) / 2
        return value <= rule.critical - margin if rule.comparison == "above" else value >= rule.critical + margin

    # --- alerts -----------------------------------------------------------------------------------

    def plan_context(self, snapshot: HealthSnapshot) -> PlanContext:
        obs_settings = snapshot.obs.settings if snapshot.obs is not None else None
        width = (obs_settings.width if obs_settings else None) or self.target.width
        height = (obs_settings.height if obs_settings else None) or self.target.height
        fps = (obs_settings.fps if obs_settings else None) or self.target.fps
        return PlanContext.build(
            snapshot,
            self.derived,
            self.playbook,
            self.preset,
            brb_scene=self.brb_scene,
            resolution=(width, height) if width and height else None,
            fps=fps,
        )

    def suggestions_for(self, rule: RuleSpec, context: PlanContext) -> list[Suggestion]:
        return self.playbook.suggestions(rule.kind, context, rule.suggest)

    def _alert(
        self,
        rule: RuleSpec,
        severity: Severity,
        value: Value,
        snapshot: HealthSnapshot,
        context: PlanContext,
        *,
        since: datetime,
    ) -> Alert:
        threshold = rule.critical if severity == "critical" and rule.critical is not None else rule.warning
        if rule.comparison not in ("above", "below"):
            threshold = None
        numeric = value if isinstance(value, float) else None
        figures: dict[str, Any] = {
            "value": value,
            "threshold": threshold,
            "severity": severity,
            "system": snapshot.system,
            "network": snapshot.network,
            "obs": snapshot.obs,
            "ffmpeg": snapshot.ffmpeg,
            "uplink": snapshot.uplink,
            "relay": snapshot.relay,
            "bandwidth": snapshot.bandwidth,
            "shipping": snapshot.shipping,
            "sources": snapshot.sources,
            "logging": snapshot.logging,
            "derived": SimpleNamespace(**self.derived),
            "stream": self.target,
            "preset": SimpleNamespace(
                **{k: v for k, v in context.values.items() if k.startswith(("preset_", "platform"))}
            ),
        }
        return Alert(
            id=rule.name,
            kind=rule.kind,
            severity=severity,
            message=fill(rule.message, figures),
            since=since,
            updated_at=snapshot.taken_at,
            value=numeric,
            threshold=threshold,
            suggestions=self.suggestions_for(rule, context),
        )


def slope_per_s(points: list[tuple[float, float]], window_s: float) -> float | None:
    """Least-squares slope (units per second) of the points, or None when they cover too little of the
    window to tell a trend from noise (fewer than 3 points, or less than half the window)."""
    if len(points) < 3 or points[-1][0] - points[0][0] < window_s / 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var_t


def brb_scene_of(settings: Settings) -> str | None:
    """The OBS scene the agent switches to itself when the stream is in trouble, if configured
    (sources.obs.backup_scene, owned by the OBS source). Read defensively: None when absent or off."""
    obs = getattr(settings.sources, "obs", None)
    plan = getattr(obs, "backup_scene", None)
    if plan is None or not getattr(plan, "enabled", False):
        return None
    scene = getattr(plan, "scene", None)
    return scene if isinstance(scene, str) and scene else None

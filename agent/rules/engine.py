"""The rule engine: thresholds, durations and trends over the snapshots, as alerts.

Each rule (configs/rules.toml, see config.py) is evaluated once per tick. An alert is raised only after its
condition has held for `for_s`, is then updated in place (never raised again while active), escalates after
the critical condition has held for `for_s`, and de-escalates or clears once the value has stayed on the
healthy side of the threshold for `clear_for_s`. While active, the alert shows the worst moment of that last
`clear_for_s` (its value, message and suggestions as they were then): the figure that keeps it active, never
one on the healthy side of its threshold. A tick whose message would lack a figure is not judged, so a
message never has a hole. Trend rules compare the slope of the metric's recent history instead of its
value. Times are the snapshots' own (`taken_at`) or the caller's monotonic clock, so the engine is
deterministic under test and in replays (`streamhealth rules test`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Literal

from agent.history import History
from agent.models import Alert, AlertChange, HealthSnapshot, Severity, Suggestion
from agent.rules.config import RuleSet, RuleSpec, load_rule_set
from agent.rules.derived import DerivedCalculator, StreamTarget, stream_target
from agent.rules.playbook import PlanContext
from agent.rules.templates import render
from agent.settings import Settings

# While an alert is active its numbers change every tick; the snapshot shows them at once, but an
# `updated` change (event stream, health log) is emitted only when the severity changes or, at most
# this often, when its suggestions changed.
UPDATE_EVENTS_EVERY_S = 10.0
_SEVERITY_RANK = {"warning": 1, "critical": 2}
Value = float | str | None


@dataclass(frozen=True)
class _Moment:
    """One tick at which the rule's condition held: what an alert shows, as it was then."""

    at: float
    taken_at: datetime
    value: Value
    severity: Severity
    message: str
    suggestions: list[Suggestion]


@dataclass
class _RuleState:
    alert: Alert | None = None
    past_since: dict[Severity, float | None] = field(default_factory=lambda: {"warning": None, "critical": None})
    healthy_since: dict[Severity, float | None] = field(default_factory=lambda: {"warning": None, "critical": None})
    moments: deque[_Moment] = field(default_factory=deque)  # while active: the condition's ticks, clear window
    last_critical: _Moment | None = None
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
            severity_now = self._severity_now(rule, value) if value is not None else None
            moment: _Moment | None = None
            if severity_now is not None:
                if context is None:
                    context = self.plan_context(snapshot)
                moment = self._moment(rule, severity_now, value, snapshot, context, now)
                if moment is None:
                    severity_now = None  # a figure its message needs is missing: not judged this tick
            step = self._step(rule, state, severity_now, moment, now)
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
            previous = state.alert
            state.alert = self._alert(rule, state, since=previous.since if previous else snapshot.taken_at)
            state.alert = state.alert.model_copy(update={"updated_at": snapshot.taken_at})
            if previous is None:
                change: Literal["raised", "updated"] = "raised"
            elif previous.severity != state.alert.severity:
                change = "updated"
            elif (
                state.alert.suggestions == state.emitted_suggestions
                or now - state.last_event_at < UPDATE_EVENTS_EVERY_S
            ):
                continue
            else:
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

    def _severity_now(self, rule: RuleSpec, value: Value) -> Severity | None:
        if rule.comparison not in ("above", "below"):
            return rule.severity if self._past(rule, value, None) else None
        if self._past(rule, value, rule.critical):
            return "critical"
        if self._past(rule, value, rule.warning):
            return "warning"
        return None

    def _step(
        self, rule: RuleSpec, state: _RuleState, severity_now: Severity | None, moment: _Moment | None, now: float
    ) -> str | None:
        """Advance one rule by one tick; return 'raised' / 'changed' / 'cleared', or None (nothing to show)."""
        critical_now = severity_now == "critical"
        state.past_since["critical"] = (state.past_since["critical"] or now) if critical_now else None
        state.past_since["warning"] = (state.past_since["warning"] or now) if severity_now is not None else None

        def held(level: Severity) -> bool:
            since = state.past_since[level]
            return since is not None and now - since >= rule.for_s

        if state.alert is None:
            if not held("warning"):
                return None
            assert moment is not None
            severity: Severity = "critical" if held("critical") else "warning"
            state.moments.clear()
            state.healthy_since = {"warning": None, "critical": None if severity == "critical" else now}
            state.moments.append(moment if moment.severity == severity else _with_severity(moment, severity))
            state.last_critical = moment if moment.severity == "critical" else None
            return "raised"

        clear_s = rule.clear_duration_s
        # Healthy since the first tick the value was on the healthy side (of the warning threshold for clearing,
        # of the critical one for stepping back to warning); reset by any tick on the alerting side.
        state.healthy_since["warning"] = None if severity_now is not None else (state.healthy_since["warning"] or now)
        state.healthy_since["critical"] = None if critical_now else (state.healthy_since["critical"] or now)
        healthy_since = state.healthy_since["warning"]
        if healthy_since is not None and now - healthy_since >= clear_s:
            return "cleared"
        current: Severity = state.alert.severity
        if current == "warning" and held("critical"):
            current = "critical"
        elif current == "critical":
            below_critical_since = state.healthy_since["critical"]
            if below_critical_since is not None and now - below_critical_since >= clear_s:
                current = "warning"
        if moment is not None:
            state.moments.append(moment)
        if moment is not None and critical_now:
            state.last_critical = moment
        while len(state.moments) > 1 and now - state.moments[0].at >= clear_s:
            state.moments.popleft()
        if current == "critical" and state.last_critical is not None and state.last_critical not in state.moments:
            state.moments.appendleft(state.last_critical)  # what keeps it critical, however far back in the window
        # The moments kept at the old severity are re-labelled: the worst of them still holds for the new one.
        if any(m.severity != current for m in state.moments):
            state.moments = deque(_with_severity(m, current) for m in state.moments)
        return "changed"

    def _worst(self, rule: RuleSpec, moments: deque[_Moment]) -> _Moment:
        """The moment that keeps the alert active: the highest value of an above rule, the lowest of a below
        rule, the latest of the others; the latest among equals."""
        if rule.comparison not in ("above", "below"):
            return moments[-1]
        sign = 1.0 if rule.comparison == "above" else -1.0
        best = moments[-1]
        for moment in reversed(moments):
            if (
                isinstance(moment.value, float)
                and isinstance(best.value, float)
                and sign * moment.value > sign * best.value
            ):
                best = moment
        return best

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

    def _moment(
        self,
        rule: RuleSpec,
        severity: Severity,
        value: Value,
        snapshot: HealthSnapshot,
        context: PlanContext,
        now: float,
    ) -> _Moment | None:
        """This tick as the alert would show it, or None when its message lacks a figure."""
        figures: dict[str, Any] = {
            "value": value,
            "threshold": self._threshold(rule, severity),
            "severity": severity,
            "system": snapshot.system,
            "network": snapshot.network,
            "obs": snapshot.obs,
            "ffmpeg": snapshot.ffmpeg,
            "uplink": snapshot.uplink,
            "relay": snapshot.relay,
            "bandwidth": snapshot.bandwidth,
            "shipping": snapshot.shipping,
            "sources": SimpleNamespace(**snapshot.sources),  # {sources.obs.error}: attributes, not keys
            "logging": snapshot.logging,
            "upload_capacity": snapshot.upload_capacity,
            "derived": SimpleNamespace(**self.derived),
            "stream": self.target,
            "preset": SimpleNamespace(
                **{k: v for k, v in context.values.items() if k.startswith(("preset_", "platform"))}
            ),
        }
        message = render(rule.message, figures)
        if message is None:
            return None
        if rule.detail is not None:
            detail = render(rule.detail, figures)
            if detail is not None:
                message = f"{message}{detail}" if detail[:1] in ";,:." else f"{message} {detail}"
        return _Moment(
            at=now,
            taken_at=snapshot.taken_at,
            value=value,
            severity=severity,
            message=message,
            suggestions=self.suggestions_for(rule, context),
        )

    @staticmethod
    def _threshold(rule: RuleSpec, severity: Severity) -> float | None:
        if rule.comparison not in ("above", "below"):
            return None
        return rule.critical if severity == "critical" and rule.critical is not None else rule.warning

    def _alert(self, rule: RuleSpec, state: _RuleState, *, since: datetime) -> Alert:
        shown = self._worst(rule, state.moments)
        return Alert(
            id=rule.name,
            kind=rule.kind,
            severity=shown.severity,
            message=shown.message,
            since=since,
            updated_at=shown.taken_at,
            value=shown.value if isinstance(shown.value, float) else None,
            threshold=self._threshold(rule, shown.severity),
            suggestions=shown.suggestions,
        )


def _with_severity(moment: _Moment, severity: Severity) -> _Moment:
    return _Moment(moment.at, moment.taken_at, moment.value, severity, moment.message, moment.suggestions)


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

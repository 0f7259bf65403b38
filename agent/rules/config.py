"""Rules as data: the schema of a rule, and loading the rule set (shipped rules, the user's rules file,
overrides and disabled names from the settings) with every mistake reported as one `ConfigError` that
names the file, the rule and the reason. No evaluation here: that is engine.py."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent import paths
from agent.errors import ConfigError
from agent.models import (
    FfmpegSample,
    LoggingStatus,
    NetworkSample,
    ObsSample,
    RelaySample,
    SystemSample,
    UplinkSample,
)
from agent.models.reports import BandwidthResult
from agent.models.shipping import ShippingState
from agent.platforms import PlatformPreset, load_preset
from agent.rules.derived import DERIVED_METRICS
from agent.rules.playbook import Playbook, load_playbook
from agent.settings import Settings, read_toml

Comparison = Literal["above", "below", "is_true", "is_false", "in", "not_in"]

# Where a dotted metric path may start, and the model whose fields it names.
_SAMPLE_ROOTS: dict[str, type[BaseModel]] = {
    "system": SystemSample,
    "network": NetworkSample,
    "obs": ObsSample,
    "ffmpeg": FfmpegSample,
    "bandwidth": BandwidthResult,
    "shipping": ShippingState,
    "logging": LoggingStatus,
    "uplink": UplinkSample,
    "relay": RelaySample,
}
MESSAGE_ROOTS = frozenset(
    {*_SAMPLE_ROOTS, "derived", "sources", "value", "threshold", "severity", "stream", "preset", "upload_capacity"}
)


class RuleSpec(BaseModel):
    """One rule. Thresholds apply to the metric's value, or with `trend_window_s` to its slope per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str = ""
    metric: str = Field(description="Dotted path into the snapshot (obs.output_congestion_ratio) or derived.<name>.")
    comparison: Comparison
    warning: float | None = None
    critical: float | None = None
    severity: Literal["warning", "critical"] = Field(
        "warning", description="For is_true / is_false / in / not_in rules: the severity when they match."
    )
    values: list[str] = Field(default_factory=list, description="For in / not_in: the values compared with.")
    for_s: float = Field(0.0, ge=0, le=3600, description="The condition must hold this long before the alert.")
    clear: float | None = Field(
        None,
        description="Accepted for older rule files, not used: an alert clears once the value has stayed on the "
        "healthy side of its threshold for clear_for_s (it never shows a value on that side).",
    )
    clear_for_s: float | None = Field(
        None, ge=0, le=3600, description="How long the value must stay healthy to clear. Default: max(for_s, 5)."
    )
    trend_window_s: float | None = Field(None, gt=0, le=3600, description="Compare the slope over this window.")
    trend_min_value: float | None = Field(None, description="Trend rules: ignore slopes while the value is below this.")
    when: list[str] = Field(
        default_factory=list, description="Metrics that must be true / non-zero for the rule to apply."
    )
    unless: list[str] = Field(default_factory=list, description="Metrics that must be false / zero / absent.")
    message: str
    detail: str | None = Field(
        None, description="Appended to the message when all its figures are known (an error text, a rate...)."
    )
    suggest: list[str] | None = Field(None, description="Playbook entries; default: the playbook's plan for the kind.")
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> RuleSpec:
        if not self.kind:
            object.__setattr__(self, "kind", self.name)
        for path in [self.metric, *self.when, *self.unless]:
            problem = metric_path_problem(path)
            if problem:
                raise ValueError(problem)
        if self.comparison in ("above", "below"):
            self._check_thresholds()
        else:
            if self.warning is not None or self.critical is not None or self.clear is not None:
                raise ValueError(
                    f"a {self.comparison} rule takes `severity`, not warning / critical / clear thresholds"
                )
            if self.trend_window_s is not None:
                raise ValueError("trend_window_s needs comparison 'above' or 'below'")
            if self.comparison in ("in", "not_in") and not self.values:
                raise ValueError(f"a {self.comparison} rule needs `values`")
        if self.trend_window_s is not None and self.metric.split(".")[0] in ("sources", "bandwidth"):
            raise ValueError("a trend rule needs a metric with history (<source>.<field> or derived.<name>)")
        for name, template in (("message", self.message), ("detail", self.detail or "")):
            problem = template_problem(template)
            if problem:
                raise ValueError(f"{name}: {problem}")
        return self

    def _check_thresholds(self) -> None:
        if self.warning is None and self.critical is None:
            raise ValueError(f"a {self.comparison} rule needs a warning or a critical threshold")
        above = self.comparison == "above"

        def worse(a: float, b: float) -> bool:
            return a >= b if above else a <= b

        if self.warning is not None and self.critical is not None and not worse(self.critical, self.warning):
            side = "at or above" if self.comparison == "above" else "at or below"
            raise ValueError(f"critical ({self.critical:g}) must be {side} warning ({self.warning:g})")
        first = self.warning if self.warning is not None else self.critical
        assert first is not None
        if self.clear is not None and not worse(first, self.clear):
            side = "at or below" if self.comparison == "above" else "at or above"
            raise ValueError(
                f"clear ({self.clear:g}) must be {side} the first threshold ({first:g}): it is the hysteresis"
            )

    @property
    def clear_duration_s(self) -> float:
        return self.clear_for_s if self.clear_for_s is not None else max(self.for_s, 5.0)


def metric_path_problem(path: str) -> str | None:
    parts = path.split(".")
    root = parts[0]
    if root == "derived":
        if len(parts) != 2 or parts[1] not in DERIVED_METRICS:
            return f"unknown derived metric {path!r} (known: {', '.join(sorted(DERIVED_METRICS))})"
        return None
    if root == "sources":
        if len(parts) != 3:
            return f"{path!r}: use sources.<source name>.<state|age_s|consecutive_failures>"
        return None
    model = _SAMPLE_ROOTS.get(root)
    if model is None:
        return f"{path!r} does not start with one of: {', '.join(sorted([*_SAMPLE_ROOTS, 'derived', 'sources']))}"
    if len(parts) < 2 or parts[1] not in model.model_fields:
        return f"{path!r}: {root} has no field {parts[1] if len(parts) > 1 else ''!r}"
    return None


def template_problem(template: str) -> str | None:
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        return f"not a valid template: {exc}"
    for field in fields:
        root = field.split(".")[0].split("[")[0]
        if root not in MESSAGE_ROOTS:
            return (
                f"unknown placeholder {{{field}}} (placeholders start with one of: {', '.join(sorted(MESSAGE_ROOTS))})"
            )
    return None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[RuleSpec, ...]
    playbook: Playbook
    preset: PlatformPreset


def shipped_rules_file() -> Path:
    return paths.shipped_configs_dir() / "rules.toml"


def _rule_tables(data: dict[str, Any], origin: str) -> dict[str, dict[str, Any]]:
    unknown = set(data) - {"rule"}
    if unknown:
        raise ConfigError(
            f"{origin}: unknown top-level key(s) {', '.join(sorted(unknown))}; rules go in [rule.<name>] tables",
            file=origin,
        )
    tables = data.get("rule", {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise ConfigError(f"{origin}: rules must be tables named [rule.<name>]", file=origin)
    return tables


def _validate_rule(name: str, table: dict[str, Any], origin: str) -> RuleSpec:
    try:
        return RuleSpec.model_validate({**table, "name": name})
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            reason = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
            reasons.append(f"{field}: {reason}" if field else reason)
        raise ConfigError(f"invalid rule {name!r} in {origin}: {'; '.join(reasons)}", file=origin, field=name) from None


def load_rule_set(settings: Settings, *, user_origin: str = "settings") -> RuleSet:
    """Shipped rules < the user's rules file < settings overrides; minus disabled ones. All validated."""
    shipped = shipped_rules_file()
    layers: list[tuple[str, dict[str, dict[str, Any]]]] = [
        (str(shipped), _rule_tables(read_toml(shipped), str(shipped)))
    ]
    if settings.rules.file is not None:
        layers.append(
            (str(settings.rules.file), _rule_tables(read_toml(settings.rules.file), str(settings.rules.file)))
        )
    if settings.rules.overrides:
        layers.append((f"{user_origin} (rules.overrides)", settings.rules.overrides))

    merged: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for origin, tables in layers:
        for name, table in tables.items():
            if origin.endswith("(rules.overrides)") and name not in merged:
                raise ConfigError(
                    f"{origin}: rules.overrides.{name}: there is no rule named {name!r} to override "
                    f"(known: {', '.join(sorted(merged))})",
                    field=name,
                )
            merged[name] = {**merged.get(name, {}), **table}
            origins[name] = origin
    for name in settings.rules.disabled:
        if name not in merged:
            raise ConfigError(f"{user_origin}: rules.disabled: there is no rule named {name!r}", field=name)

    rules = tuple(
        _validate_rule(name, table, origins[name])
        for name, table in merged.items()
        if name not in settings.rules.disabled
    )
    preset = load_preset(settings.platform)
    playbook = load_playbook(settings.rules.playbook_file)
    for rule in rules:
        for entry in rule.suggest or []:
            if entry not in playbook.entries:
                raise ConfigError(
                    f"invalid rule {rule.name!r} in {origins[rule.name]}: suggest: no playbook entry named {entry!r}",
                    file=origins[rule.name],
                    field=rule.name,
                )
    return RuleSet(tuple(rule for rule in rules if rule.enabled), playbook, preset)

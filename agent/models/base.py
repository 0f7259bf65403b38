"""Shared base of the data contract: immutable models, a schema version, and metric flattening.

Logs outlive code, so every top-level record carries `schema_version`; readers ignore fields they
do not know (a newer agent's log still reads), and writers never reuse a field name for a new meaning.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every model that crosses a boundary (source -> runtime -> API / log / TUI)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Sample(Contract):
    """One reading of one source. Sources publish immutable samples; nobody mutates them later.

    `metrics()` flattens the numeric fields that are worth keeping as history (a time series per
    field, named `<source>.<field>`); nested lists such as per-core CPU stay in the sample only.
    """

    SOURCE: ClassVar[str] = ""
    # Numeric fields that are facts, not time series (sizes, counts of cores): left out of history.
    NOT_HISTORY: ClassVar[frozenset[str]] = frozenset()
    # Fields whose change should be judged by the rules at once, not at the next tick (fast sources).
    PROMPT_FIELDS: ClassVar[tuple[str, ...]] = ()

    taken_at: datetime = Field(default_factory=utc_now, description="When the source took this reading (UTC).")

    def metrics(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, key in _history_keys(type(self)):
            value = getattr(self, name)
            if isinstance(value, bool):
                values[key] = 1.0 if value else 0.0
            elif isinstance(value, int | float):
                values[key] = float(value)
        return values


_HISTORY_KEYS: dict[type[Sample], tuple[tuple[str, str], ...]] = {}


def _history_keys(kind: type[Sample]) -> tuple[tuple[str, str], ...]:
    """(field, "<source>.<field>") for each field that may hold a time series: named once per class, not
    on every sample (several samples a second)."""
    keys = _HISTORY_KEYS.get(kind)
    if keys is None:
        keys = _HISTORY_KEYS[kind] = tuple(
            (name, f"{kind.SOURCE}.{name}") for name in kind.model_fields if name not in kind.NOT_HISTORY
        )
    return keys

"""Filling message and suggestion templates (`str.format` syntax). `render` refuses a template whose figures
are not all known (None, absent): a message never shows a hole, the caller judges without it or says less.
`fill` never raises either; a format spec that does not suit the value falls back to `str(value)`."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any


class _Unknown:
    pass


_UNKNOWN = _Unknown()


class _Missing(Exception):
    def __init__(self, field_name: str) -> None:
        super().__init__(field_name)
        self.field_name = field_name


class _SafeFormatter(string.Formatter):
    def __init__(self, *, strict: bool) -> None:
        self.strict = strict

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        try:
            value, used = super().get_field(field_name, args, kwargs)
        except (KeyError, AttributeError, IndexError, TypeError):
            return _UNKNOWN, field_name
        return (_UNKNOWN if value is None else value), used

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is _UNKNOWN:
            if self.strict:
                raise _Missing(format_spec)
            return "unknown"
        try:
            return str(super().format_field(value, format_spec))
        except (ValueError, TypeError):
            return str(value)


_STRICT = _SafeFormatter(strict=True)
_LENIENT = _SafeFormatter(strict=False)


def render(template: str, values: Mapping[str, Any]) -> str | None:
    """The template filled in, or None when one of its figures is not known."""
    try:
        return _STRICT.vformat(template, (), dict(values))
    except _Missing:
        return None


def missing(template: str, values: Mapping[str, Any]) -> list[str]:
    """The placeholders of `template` whose figures are not known (for error messages and tests)."""
    fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    return [field for field in fields if render("{" + field + "}", values) is None]


def fill(template: str, values: Mapping[str, Any]) -> str:
    """The template filled in, an unknown figure shown as 'unknown' (use `render` to refuse instead)."""
    return _LENIENT.vformat(template, (), dict(values))

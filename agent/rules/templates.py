"""Filling message and suggestion templates (`str.format` syntax) without ever raising: an unknown or
absent figure shows as "?", a format spec that does not suit the value falls back to `str(value)`.
A half-filled message is better than an alert that cannot be raised."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

UNKNOWN = "?"


class _Unknown:
    pass


_UNKNOWN = _Unknown()


class _SafeFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        try:
            value, used = super().get_field(field_name, args, kwargs)
        except (KeyError, AttributeError, IndexError, TypeError):
            return _UNKNOWN, field_name
        return (_UNKNOWN if value is None else value), used

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is _UNKNOWN:
            return UNKNOWN
        try:
            return str(super().format_field(value, format_spec))
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _SafeFormatter()


def fill(template: str, values: Mapping[str, Any]) -> str:
    return _FORMATTER.vformat(template, (), dict(values))

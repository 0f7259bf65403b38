"""Saying what is wrong with the settings: which file or variable, which field, why; and misspelt variables.

pydantic-settings merges the layers before validating, so its errors name a field but not where its value
came from, a value that is not JSON is `error parsing value for field "ingest"`, and an unknown
`STREAMHEALTH_*` variable is ignored in silence. These functions add that, from the layers as read; they
read nothing themselves (agent/settings.py does).
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.redact import redact

# Variables that are not settings but are ours (the config file's path; the tests' fixtures folder; the
# collector's database URL, read by `streamhealth collector`).
NOT_SETTINGS = frozenset({"STREAMHEALTH_CONFIG", "STREAMHEALTH_FIXTURES"})
NOT_SETTINGS_PREFIX = "STREAMHEALTH_COLLECTOR"  # the collector's own section (collector/settings.py), the fleet's token
# Fields whose values are secrets or carry one (an ingest URL's stream key), never quoted in a message.
SECRET_FIELDS = frozenset(
    {"token", "password", "key", "stream_key", "primary", "backups", "rtmp_url", "webhooks", "url", "database"}
)

Layers = list[tuple[str, Mapping[str, Any]]]  # (file name, its contents), lowest first


def describe_validation_error(
    exc: ValidationError,
    layers: Layers,
    environ: Mapping[str, str],
    prefix: str,
    delimiter: str,
    *,
    section: str = "",
) -> str:
    """One line per problem: where the value came from, the field, the reason (secrets never quoted).
    `section`: the name of the table the model is (the collector's settings are `[collector]`)."""
    lines = ["invalid configuration:"]
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        field = ".".join([section, *loc] if section else loc) or "(top level)"
        origin = origin_of(loc, layers, environ, prefix, delimiter)
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            reason = "unknown setting (check the spelling; configs/default.toml lists every setting)"
        elif "input" in error and error["type"] != "missing" and not set(loc) & SECRET_FIELDS:
            shown = redact(repr(error["input"]))
            reason = f"{reason} (got {shown[:80]})"
        lines.append(f"  {origin}: {field}: {redact(reason)}")
    return "\n".join(lines)


def origin_of(loc: list[str], layers: Layers, environ: Mapping[str, str], prefix: str, delimiter: str) -> str:
    """The variable or file the failing value came from: the top layer that sets it.

    An error about a whole section (a check across its fields) names the variables that set any of its
    fields, since they override the files: `STREAMHEALTH_SAMPLING__INTERVAL_S=0.1` that makes the history
    too long is that variable's doing, not configs/default.toml's."""
    env_names = {name.upper(): name for name in environ}
    for depth in range(len(loc), 0, -1):
        candidate = prefix + delimiter.join(loc[:depth]).upper()
        if candidate in env_names:
            return f"environment variable {env_names[candidate]}"
        if depth == len(loc):
            inside = sorted(name for upper, name in env_names.items() if upper.startswith(candidate + delimiter))
            if inside:
                return "environment variable " + ", ".join(inside)
    for file_name, layer in reversed(layers):
        node: Any = layer
        for part in loc:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return file_name
    return "settings"


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; `Annotated[X, ...]` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _variables(model: type[BaseModel], prefix: str, delimiter: str) -> Iterator[tuple[str, Any]]:
    """(variable name, annotation) for every section and setting, sections first."""
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name}".upper()
        annotation = _unwrap(field.annotation)
        yield variable, annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _variables(annotation, f"{variable}{delimiter}", delimiter)


def explain_json_error(model: type[BaseModel], environ: Mapping[str, str], prefix: str, delimiter: str) -> str | None:
    """The variable whose value should be JSON (a list, a table, a section) and is not; None if none is."""
    annotations = dict(_variables(model, prefix, delimiter))
    for variable, value in environ.items():
        annotation = annotations.get(variable.upper())
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if annotation is None or not (is_model or typing.get_origin(annotation) in (list, dict)):
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            expected = (
                'a JSON list, e.g. ["first", "second"]'
                if typing.get_origin(annotation) is list
                else ('a JSON object, e.g. {"key": "value"}')
            )
            return f"environment variable {variable}: not valid JSON ({exc}); it must be {expected}"
    return None


def unknown_variable_warnings(
    model: type[BaseModel], environ: Mapping[str, str], prefix: str, delimiter: str
) -> list[str]:
    """One warning per `STREAMHEALTH_*` variable that names no section, with the closest setting.

    (A misspelt name inside a known section is an error instead: the section's model forbids it.)"""
    known = [variable for variable, _ in _variables(model, prefix, delimiter)]
    sections = {variable for variable, _ in _variables(model, prefix, delimiter) if delimiter not in variable}
    warnings = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(prefix) or upper in NOT_SETTINGS or upper.startswith(NOT_SETTINGS_PREFIX):
            continue
        if upper.split(delimiter, 1)[0] in sections:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" (settings are {prefix}<SECTION>{delimiter}<NAME>)"
        warnings.append(f"environment variable {variable} is not a setting and is ignored{hint}")
    return warnings

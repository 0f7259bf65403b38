"""What the `STREAMHEALTH_*` environment variables can name, for the two messages pydantic-settings
cannot give: which variable holds a value that is not JSON (it only says `error parsing value for
field "ingest"`), and which variable is a typo (it ignores unknown variables silently).

Reads the settings models' fields only; loading and validating stay in agent/settings.py.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

# Variables that are not settings but are ours (the config file's path; the tests' fixtures folder; the
# collector's database URL, read by `streamhealth collector`).
NOT_SETTINGS = frozenset({"STREAMHEALTH_CONFIG", "STREAMHEALTH_FIXTURES", "STREAMHEALTH_COLLECTOR_DATABASE"})


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


def _fields(model: type[BaseModel], prefix: str, delimiter: str) -> Iterator[tuple[str, Any]]:
    """(variable name, annotation) for every section and setting, sections first."""
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name}".upper()
        annotation = _unwrap(field.annotation)
        yield variable, annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{variable}{delimiter}", delimiter)


def _is_json_valued(annotation: Any) -> bool:
    """Lists, dicts and sections are read from the environment as JSON."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return typing.get_origin(annotation) in (list, dict) or annotation in (list, dict)


def _expected_json(annotation: Any) -> str:
    if typing.get_origin(annotation) is list or annotation is list:
        return 'a JSON list, e.g. ["first", "second"]'
    return 'a JSON object, e.g. {"key": "value"}'


def explain_parse_error(model: type[BaseModel], environ: Mapping[str, str], prefix: str, delimiter: str) -> str | None:
    """The variable whose value should be JSON and is not, and why; None if none is found."""
    annotations = dict(_fields(model, prefix, delimiter))
    for variable, value in environ.items():
        annotation = annotations.get(variable.upper())
        if annotation is None or not _is_json_valued(annotation):
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            return f"environment variable {variable}: not valid JSON ({exc}); it must be {_expected_json(annotation)}"
    return None


def unknown_variable_warnings(
    model: type[BaseModel], environ: Mapping[str, str], prefix: str, delimiter: str
) -> list[str]:
    """One warning per `STREAMHEALTH_*` variable that names no setting, with the closest setting."""
    known = [variable for variable, _ in _fields(model, prefix, delimiter)]
    known_set = set(known)
    warnings = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(prefix) or upper in known_set or upper in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" (settings are {prefix}<SECTION>{delimiter}<NAME>)"
        warnings.append(f"environment variable {variable} is not a setting and is ignored{hint}")
    return warnings

"""`STREAMHEALTH_*` environment variables as one layer of the settings (the top one).

`STREAMHEALTH_API__PORT=9000` becomes `{"api": {"port": "9000"}}`: names are case-insensitive, `__`
separates the levels, and pydantic converts the text as it would a TOML value. A setting that holds a
list, a table or a section takes JSON (`STREAMHEALTH_INGEST__BACKUPS='["rtmp://..."]'`). Variables that
name no section are not ours (STREAMHEALTH_CONFIG names the file) and are left alone. This replaces
pydantic-settings, which cost the agent 4 MB of memory for what these few lines do.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from agent.errors import ConfigError
from agent.redact import redact

_COMPLEX = (list, dict, set, tuple, frozenset)


def env_layer(model: type[BaseModel], environ: Mapping[str, str], prefix: str, delimiter: str) -> dict[str, Any]:
    """The variables of `environ` that name settings of `model`, as nested mappings."""
    layer: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.upper().startswith(prefix):
            continue
        path = name[len(prefix) :].lower().split(delimiter)
        if not path[0] or path[0] not in model.model_fields:
            continue
        node = layer
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a section given both whole (JSON) and by parts: the parts win
                child = node[part] = {}
            node = child
        node[path[-1]] = _parse(name, value, _annotation_at(model, path))
    return layer


def _annotation_at(model: type[BaseModel], path: list[str]) -> Any:
    """The annotation of the setting `path` names, or None where the path leaves the known settings."""
    current: Any = model
    annotation: Any = None
    for part in path:
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        current = _model_in(annotation)
    return annotation


def _model_in(annotation: Any) -> Any:
    for candidate in _alternatives(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _alternatives(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [alt for arg in typing.get_args(annotation) for alt in _alternatives(arg)]
    return [annotation]


def _takes_json(annotation: Any) -> bool:
    for candidate in _alternatives(annotation):
        if candidate in _COMPLEX or typing.get_origin(candidate) in _COMPLEX:
            return True
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return True
    return False


def _parse(name: str, value: str, annotation: Any) -> Any:
    if annotation is None or not _takes_json(annotation):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ConfigError(
            f"environment variable {name}: this setting takes JSON (a list or a table), "
            f'e.g. \'["a", "b"]\': {redact(str(exc))}'
        ) from None

"""Keeping FastAPI light: it must not load all of pydantic v1 (2.6 MB of the agent's RSS) to learn that
none of our models is a pydantic v1 model.

While it builds routes, FastAPI asks for every annotation whether it is a v1 model, and imports
`pydantic.v1` to answer. Every model here is pydantic v2. During `create_app` a stand-in `pydantic.v1`
answers "no" (its BaseModel is a class nothing derives from); afterwards the stand-in is gone, so
anything that really imports pydantic.v1 later gets the real one.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator

import pydantic

_NAME = "pydantic.v1"


class _NoV1Model:
    """No class derives from this: `issubclass(anything_of_ours, BaseModel)` is False, as it is."""


@contextlib.contextmanager
def without_pydantic_v1_import() -> Iterator[None]:
    if _NAME in sys.modules:  # already loaded by someone: nothing to save
        yield
        return
    stand_in = types.ModuleType(_NAME, "stand-in while FastAPI builds routes; see agent/api/lean.py")
    stand_in.BaseModel = _NoV1Model  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(_NAME) is stand_in:
            del sys.modules[_NAME]
        if getattr(pydantic, "v1", None) is stand_in:
            delattr(pydantic, "v1")

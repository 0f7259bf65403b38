"""The read API's path and query parameters, checked as ingest checks what it stores.

Text the database cannot hold (a NUL) or an id no agent can have is a 422 at the door, never a query that
fails with a 503 for the reader. Shared by the read routes (app.py) and the fleet routes (fleet_routes.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator

from collector.auth import AGENT_ID_PATTERN
from collector.ingest import MAX_TEXT_CHARS

TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters, NUL included

AgentIdPath = Annotated[str, Path(pattern=AGENT_ID_PATTERN, description="The agent's id (X-Streamhealth-Agent-Id)")]
SessionIdPath = Annotated[str, Path(max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)]
AgentQuery = Annotated[
    str | None, Query(description="Agent id or name", max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)
]
TextQuery = Annotated[str | None, Query(max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)]


def _iso_only(value: Any) -> Any:
    """A time given as ISO 8601, as the document says: pydantic would also take `0.5` as Unix seconds."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("give an ISO 8601 time, e.g. 2026-11-25T08:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]

"""The read API's path and query parameters, checked as ingest checks what it stores.

Text the database cannot hold (a NUL), an id no agent can have or a time that is not the document's RFC 3339
`date-time` is a 422 at the door, never a query that fails with a 503 or reads another hour than the reader
meant. Shared by the read routes (app.py) and the fleet routes (fleet_routes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from agent.http.times import Rfc3339Time
from collector.auth import AGENT_ID_PATTERN
from collector.ingest import MAX_TEXT_CHARS

TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters, NUL included

AgentIdPath = Annotated[str, Path(pattern=AGENT_ID_PATTERN, description="The agent's id (X-Streamhealth-Agent-Id)")]
SessionIdPath = Annotated[str, Path(max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)]
AgentQuery = Annotated[
    str | None, Query(description="Agent id or name", max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)
]
TextQuery = Annotated[str | None, Query(max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)]

__all__ = ["AgentIdPath", "AgentQuery", "Rfc3339Time", "SessionIdPath", "TextQuery"]

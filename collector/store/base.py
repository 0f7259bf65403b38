"""The store interface every backend implements, and the rows it returns.

Ingest is one transaction per batch: every `(agent_id, seq)` inserted at most once, the agent's row and the
batch's sessions updated in the same transaction, and only then the answer (so the ack means committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent.errors import StreamHealthError
from agent.models import IngestAck
from collector.ingest import MinuteRollup, ParsedBatch
from collector.tokens import TokenKind


class StoreError(StreamHealthError):
    """The database refused or is unreachable; a request gets a 503 (the agent retries), a command exits 1."""


@dataclass(frozen=True)
class TokenRow:
    name: str
    kind: TokenKind


@dataclass(frozen=True)
class AgentRow:
    agent_id: str
    name: str
    token_name: str
    first_seen: datetime
    last_seen: datetime
    records: int
    last_seq: int | None
    latest_json: str | None
    alerts_json: str | None


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    agent_id: str
    agent_name: str | None
    started_at: datetime | None
    ended_at: datetime | None
    platform: str | None
    worst_rank: int | None
    records: int
    summary_line: str | None


@dataclass(frozen=True)
class SessionFilter:
    agent: str | None = None  # agent id or name
    since: datetime | None = None
    until: datetime | None = None
    platform: str | None = None
    worst_state_rank: int | None = None  # sessions at least this bad
    limit: int = 100


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ingest(self, agent_id: str, agent_name: str, token_name: str, batch: ParsedBatch) -> IngestAck: ...

    async def add_token(self, name: str, kind: TokenKind, token_hash: str) -> None: ...

    async def find_token(self, token_hash: str) -> TokenRow | None: ...

    async def agents(self) -> list[AgentRow]: ...

    async def records(self, agent_id: str, after_seq: int, limit: int) -> list[tuple[int, str]]: ...

    async def sessions(self, where: SessionFilter) -> list[SessionRow]: ...

    async def session(self, session_id: str) -> SessionRow | None: ...

    async def session_records(self, session_id: str, types: tuple[str, ...], limit: int) -> list[str]: ...

    async def minutes(self, agent_id: str, since: datetime, until: datetime) -> list[MinuteRollup]: ...

    async def prune(self, raw_before: datetime, rollups_before: datetime | None = None) -> int: ...

    async def size_bytes(self) -> int: ...

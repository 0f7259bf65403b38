"""The store interface every backend implements, and the rows it returns.

Ingest is one transaction per batch: every `(agent_id, seq)` inserted at most once, the agent's row and the
batch's sessions updated in the same transaction, and only then the answer (so the ack means committed).
An agent token belongs to one agent id (`bind_token`), and a session is named by `(agent_id, session_id)`:
what one agent sends never lands in another's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent.errors import StreamHealthError
from agent.models import IngestAck
from collector.ingest import BatchError, MinuteRollup, ParsedBatch
from collector.tokens import TokenKind


class StoreError(StreamHealthError):
    """The database refused or is unreachable; a request gets a 503 (the agent retries), a command exits 1."""


def unstorable(exc: BaseException) -> BatchError:
    """A batch the database cannot hold: refused alone (400, set aside by the agent), never a 5xx for others."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BatchError(400, "malformed batch", f"the database cannot hold this batch ({reason[:200]}); nothing stored")


@dataclass(frozen=True)
class TokenRow:
    name: str
    kind: TokenKind
    agent_id: str | None = None  # an agent token's agent: set at creation or on its first batch, then for good


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
    session_id: str | None = None
    limit: int = 100


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ingest(self, agent_id: str, agent_name: str, token_name: str, batch: ParsedBatch) -> IngestAck: ...

    async def add_token(self, name: str, kind: TokenKind, token_hash: str, agent_id: str | None = None) -> None: ...

    async def find_token(self, token_hash: str) -> TokenRow | None: ...

    async def bind_token(self, token_hash: str, agent_id: str) -> TokenRow | None:
        """Bind an unbound agent token to `agent_id`, unless another token holds that id; the row as it now is."""
        ...

    async def agents(self) -> list[AgentRow]: ...

    async def records(self, agent_id: str, after_seq: int, limit: int) -> list[tuple[int, str]]: ...

    async def sessions(self, where: SessionFilter) -> list[SessionRow]: ...

    async def session(self, agent_id: str, session_id: str) -> SessionRow | None: ...

    async def session_records(
        self, agent_id: str, session_id: str, types: tuple[str, ...], limit: int
    ) -> list[str]: ...

    async def minutes(self, agent_id: str, since: datetime, until: datetime) -> list[MinuteRollup]: ...

    async def prune(self, raw_before: datetime, rollups_before: datetime | None = None) -> int: ...

    async def size_bytes(self) -> int: ...

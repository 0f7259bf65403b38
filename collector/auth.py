"""Who is calling: an agent token (may ingest) or a read token (may read), from `Authorization: Bearer`.

An agent token writes under one agent id only: the one it was created for (`collector token --agent-id`) or
else the first id it sends, bound for good; another id with it is a 403, and an id bound to another token
too. So a token taken from one studio PC cannot write, forge seqs or sessions under any other agent.

Tokens are looked up by hash in the store; answers are cached a few seconds per process so 1,000 agents
a second do not cost 1,000 lookups, while a new token works at once and the cache stays a cache (no state
a second collector would need).
"""

from __future__ import annotations

import re
import time

from fastapi import HTTPException, Request

from collector.store import Store, TokenRow
from collector.tokens import TokenKind, hash_token

CACHE_S = 10.0
CACHE_MAX = 10_000
# What agents send (a uuid4 hex), with room for hand-made ids; it is a path segment of the read API.
AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
AGENT_ID_PATTERN = f"^{AGENT_ID.pattern}$"


class Authenticator:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, TokenRow | None]] = {}

    async def require(self, request: Request, kind: TokenKind) -> TokenRow:
        return await self.check(request.headers.get("authorization", ""), kind)

    async def check(self, header: str, kind: TokenKind) -> TokenRow:
        """The token's row; an HTTPException (401 / 403, with what to do) otherwise."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "send a token as 'Authorization: Bearer <token>' (streamhealth collector token)")
        row = await self._lookup(hash_token(token.strip()))
        if row is None:
            raise HTTPException(401, "unknown token: create one with `streamhealth collector token NAME`")
        if row.kind != kind:
            need = "an agent token" if kind == "agent" else "a read token (streamhealth collector token --reader NAME)"
            raise HTTPException(403, f"this is a {row.kind} token; this endpoint needs {need}")
        return row

    async def agent(self, header: str, agent_id: str) -> TokenRow:
        """The agent token's row, when it may write under `agent_id` (binding it on first use); else 400/401/403."""
        if not AGENT_ID.fullmatch(agent_id):
            raise HTTPException(400, "the agent id header must be 1 to 100 letters, digits, '.', '_', ':' or '-'")
        row = await self.check(header, "agent")
        if row.agent_id is None:
            token_hash = hash_token(header.partition(" ")[2].strip())
            row = await self.store.bind_token(token_hash, agent_id) or row
            self._cache[token_hash] = (time.monotonic() + CACHE_S, row)
        if row.agent_id == agent_id:
            return row
        if row.agent_id is None:
            raise HTTPException(403, f"agent id {agent_id!r} belongs to another token; send this agent's own id")
        raise HTTPException(
            403,
            f"this token belongs to agent {row.agent_id!r}, not {agent_id!r}: each agent needs its own token "
            f"(an agent whose log folder was replaced has a new id: streamhealth collector token {row.name})",
        )

    async def _lookup(self, token_hash: str) -> TokenRow | None:
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self.store.find_token(token_hash)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        # An unknown token is cached briefly too, so a misconfigured agent cannot hammer the database.
        self._cache[token_hash] = (now + (CACHE_S if row is not None else 1.0), row)
        return row

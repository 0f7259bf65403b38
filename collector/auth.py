"""Who is calling: an agent token (may ingest) or a read token (may read), from `Authorization: Bearer`.

An agent token writes under one agent id only: the one it was created for (`collector token --agent-id`) or
else the first id it sends, bound for good; another id with it is a 403, and an id bound to another token
too. So a token taken from one studio PC cannot write, forge seqs or sessions under any other agent.

Auth is the shared vocabulary's (agent/http/auth.py): `reader` is a FastAPI dependency for the read routes,
401 with `WWW-Authenticate` without a known token, 403 with a token of the other kind; ingest, served by the
fast path below FastAPI, asks `agent` with the header itself.

Tokens are looked up by hash in the store; answers are cached a few seconds per process so 1,000 agents
a second do not cost 1,000 lookups, while a new token works at once and the cache stays a cache (no state
a second collector would need).
"""

# No `from __future__ import annotations`: FastAPI reads `Depends(SCHEME)` from `reader`'s signature.

import re
import time
from typing import Annotated

from fastapi import Depends, HTTPException

from agent.http.auth import Credentials, bearer_scheme, bearer_token, forbidden, unauthorized
from collector.store import Store, TokenRow
from collector.tokens import TokenKind, hash_token

CACHE_S = 10.0
CACHE_MAX = 10_000
# What agents send (a uuid4 hex), with room for hand-made ids; it is a path segment of the read API.
AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
AGENT_ID_PATTERN = f"^{AGENT_ID.pattern}$"
SCHEME = bearer_scheme("A collector token: a read token for the read API, an agent token for ingest")


class Authenticator:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, TokenRow | None]] = {}

    async def reader(self, credentials: Annotated[Credentials, Depends(SCHEME)]) -> TokenRow:
        """The read routes' dependency: a read token's row, or a 401 / 403 that says what to send."""
        return await self._row(credentials.credentials if credentials is not None else None, "reader")

    async def check(self, header: str, kind: TokenKind) -> TokenRow:
        """The row of the token in an `Authorization` header; an HTTPException (401 / 403) otherwise."""
        return await self._row(bearer_token(header), kind)

    async def _row(self, token: str | None, kind: TokenKind) -> TokenRow:
        if not token:
            raise unauthorized("send a token as 'Authorization: Bearer <token>' (streamhealth collector token)")
        row = await self._lookup(hash_token(token))
        if row is None:
            raise unauthorized("unknown token: create one with `streamhealth collector token NAME`")
        if row.kind != kind:
            need = "an agent token" if kind == "agent" else "a read token (streamhealth collector token --reader NAME)"
            raise forbidden(f"this is a {row.kind} token; this endpoint needs {need}")
        return row

    async def agent(self, header: str, agent_id: str) -> TokenRow:
        """The agent token's row, when it may write under `agent_id` (binding it on first use); else 400/401/403."""
        row = await self.check(header, "agent")  # who asks first: without a token, a 401 whatever else is wrong
        if not AGENT_ID.fullmatch(agent_id):
            raise HTTPException(400, "the agent id header must be 1 to 100 letters, digits, '.', '_', ':' or '-'")
        if row.agent_id is None:
            token_hash = hash_token(bearer_token(header) or "")
            row = await self.store.bind_token(token_hash, agent_id) or row
            self._cache[token_hash] = (time.monotonic() + CACHE_S, row)
        if row.agent_id == agent_id:
            return row
        if row.agent_id is None:
            raise forbidden(f"agent id {agent_id!r} belongs to another token; send this agent's own id")
        raise forbidden(
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

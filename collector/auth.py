"""Who is calling: an agent token (may ingest) or a read token (may read), from `Authorization: Bearer`.

Tokens are looked up by hash in the store; answers are cached a few seconds per process so 1,000 agents
a second do not cost 1,000 lookups, while a new token works at once and the cache stays a cache (no state
a second collector would need).
"""

from __future__ import annotations

import time

from fastapi import HTTPException, Request

from collector.store import Store, TokenRow
from collector.tokens import TokenKind, hash_token

CACHE_S = 10.0
CACHE_MAX = 10_000


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

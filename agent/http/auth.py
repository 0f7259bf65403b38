"""Bearer-token auth as a FastAPI dependency: the token from `Authorization: Bearer <token>` (the scheme
case-insensitive, as RFC 9110 says), a 401 with `WWW-Authenticate` when it is missing or wrong, a 403 when
it is known but may not do this. The document gets the scheme from FastAPI's `HTTPBearer`.

Which tokens exist and what each may do is the service's: one shared secret for the agent (`token_check`),
tokens by kind in the store for the collector (collector/auth.py).
"""

# No `from __future__ import annotations`: FastAPI must read `Depends(scheme)` of a closure.

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

SCHEME_NAME = "apiToken"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="streamhealth"'}

Credentials = HTTPAuthorizationCredentials | None


def bearer_scheme(description: str) -> HTTPBearer:
    """The credentials as FastAPI reads them (None when absent or another scheme: the caller answers 401)."""
    return HTTPBearer(scheme_name=SCHEME_NAME, description=description, auto_error=False)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization` header read as `HTTPBearer` reads it, for code below FastAPI (the
    collector's ingest fast path); None when absent or another scheme."""
    scheme, token = get_authorization_scheme_param(header)
    return token if scheme.lower() == "bearer" and token else None


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers=CHALLENGE)


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


def token_check(token: str, *, description: str, detail: str) -> Callable[..., Awaitable[None]]:
    """A dependency that lets through only `token` (compared in constant time)."""
    expected = token.encode()
    scheme = bearer_scheme(description)

    async def require_token(credentials: Annotated[Credentials, Depends(scheme)]) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise unauthorized(detail)

    return require_token

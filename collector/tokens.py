"""Tokens: random, shown once, stored only as a hash.

A token is 32 random bytes (URL-safe text), so a plain SHA-256 is enough to store it: there is nothing to
guess, unlike a password, and the hash is cheap to check on every batch.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

TokenKind = Literal["agent", "reader"]
PREFIX = {"agent": "sha_", "reader": "shr_"}


def new_token(kind: TokenKind) -> str:
    return PREFIX[kind] + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

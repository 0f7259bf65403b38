"""Where the collector keeps everything: one interface, two stores (SQLite, PostgreSQL).

`open_store(url)` picks by the URL: `sqlite:///PATH` or `postgresql://...`. The store is the only state;
collectors in front of one PostgreSQL share it and hold nothing themselves.
"""

from __future__ import annotations

from pathlib import Path

from agent.errors import ConfigError
from collector.store.base import AgentRow, SessionFilter, SessionRow, Store, StoreError, TokenRow

__all__ = ["AgentRow", "SessionFilter", "SessionRow", "Store", "StoreError", "TokenRow", "open_store"]


def open_store(url: str) -> Store:
    if url.startswith(("postgresql://", "postgres://")):
        from collector.store.postgres import PostgresStore  # psycopg is imported by the collector only

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        from collector.store.sqlite import SqliteStore

        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    raise ConfigError(f"unknown database URL {redact_database_url(url)!r}: use sqlite:///PATH or postgresql://...")


def redact_database_url(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":<redacted>@", 1)
    return urlunsplit(parts._replace(netloc=netloc))

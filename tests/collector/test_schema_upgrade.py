"""A database written by an earlier collector opens in this one: tokens learn their agent, sessions their key.

The earlier schema (tokens without an agent, sessions keyed by session_id alone) is written here as it
was, with a token and a session in it; this collector must keep both and serve them under the new rules.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collector.store import open_store
from collector.tokens import hash_token
from tests.collector.helpers import other, running_collector, tick

pytestmark = pytest.mark.integration

EARLIER_TOKENS = (
    "CREATE TABLE tokens (hash {text} PRIMARY KEY, name {text} NOT NULL, kind {text} NOT NULL, "
    "created_at {time} NOT NULL)"
)
EARLIER_SESSIONS = (
    "CREATE TABLE sessions (session_id {text} PRIMARY KEY, agent_id {text} NOT NULL, started_at {time}, "
    "ended_at {time}, platform {text}, worst_rank int, records bigint NOT NULL DEFAULT 0, summary_line {text})"
)
TOKEN = "sha_an-earlier-token"


def write_earlier_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(EARLIER_TOKENS.format(text="TEXT", time="REAL"))
        connection.execute(EARLIER_SESSIONS.format(text="TEXT", time="REAL"))
        connection.execute("CREATE INDEX sessions_agent ON sessions (agent_id, started_at)")
        connection.execute("INSERT INTO tokens VALUES (?, 'studio-pc', 'agent', 0)", (hash_token(TOKEN),))
        connection.execute("INSERT INTO sessions VALUES ('s-old', 'agent-a', ?, ?, 'twitch', 0, 3, NULL)", (1.0, 2.0))


def write_earlier_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(EARLIER_TOKENS.format(text="text", time="timestamptz"))
        connection.execute(EARLIER_SESSIONS.format(text="text", time="timestamptz"))
        connection.execute("INSERT INTO tokens VALUES (%s, 'studio-pc', 'agent', now())", (hash_token(TOKEN),))
        connection.execute("INSERT INTO sessions VALUES ('s-old', 'agent-a', now(), now(), 'twitch', 0, 3, NULL)")


async def test_an_earlier_database_is_upgraded_in_place_and_keeps_its_tokens_and_sessions(
    database_url: str,
) -> None:
    if database_url.startswith("sqlite:///"):
        write_earlier_sqlite(Path(database_url.removeprefix("sqlite:///")))
    else:
        write_earlier_postgres(database_url)
    store = open_store(database_url)
    await store.open()
    try:
        kept = await store.session("agent-a", "s-old")
        assert kept is not None and kept.platform == "twitch" and kept.records == 3
        row = await store.find_token(hash_token(TOKEN))
        assert row is not None and row.name == "studio-pc" and row.agent_id is None
    finally:
        await store.close()

    async with running_collector(database_url) as collector:
        assert (await collector.ship([tick(1, session_id="s-old")], agent_id="agent-a", token=TOKEN)).status_code == 200
        assert (await collector.ship([tick(2)], agent_id="agent-z", token=TOKEN)).status_code == 403  # now bound
        # another agent's session of the same id is its own row now
        await collector.ship([other(1, "session_summary", session_id="s-old", platform="youtube")], agent_id="agent-b")
        async with collector.reader() as http:
            mine = (await http.get("/api/v1/sessions/s-old", params={"agent": "agent-a"})).json()
    assert mine["platform"] == "twitch" and mine["records"] == 4

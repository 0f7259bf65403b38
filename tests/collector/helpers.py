"""A collector on loopback (real uvicorn, in this process) and record lines shaped like the agent's."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn

from agent.http.server import uvicorn_config
from agent.models.shipping import AGENT_ID_HEADER, AGENT_NAME_HEADER, INGEST_PATH
from collector.app import create_app
from collector.store import open_store
from collector.tokens import hash_token, new_token
from tests.peers.wait import async_wait_until, free_port


@dataclass
class RunningCollector:
    """`agent_token` is agent-a's (bound on its first batch); other agents get tokens of their own."""

    url: str
    agent_token: str
    reader_token: str
    database_url: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    async def token_for(self, agent_id: str) -> str:
        """The agent's own token: an agent token writes under one agent id only."""
        if agent_id == "agent-a" or (self.database_url is None and not self.tokens):
            self.tokens.setdefault(agent_id, self.agent_token)
        if agent_id not in self.tokens:
            assert self.database_url is not None, "a second agent needs the database to create its token"
            self.tokens[agent_id] = (await add_agent_tokens(self.database_url, [agent_id]))[0]
        return self.tokens[agent_id]

    def reader(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {self.reader_token}"}, timeout=10
        )

    async def ship(
        self, lines: list[str], agent_id: str = "agent-a", name: str = "studio-pc", token: str | None = None
    ) -> httpx.Response:
        body = gzip.compress("".join(line + "\n" for line in lines).encode())
        token = token or await self.token_for(agent_id)
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            return await http.post(
                INGEST_PATH,
                content=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Encoding": "gzip",
                    AGENT_ID_HEADER: agent_id,
                    AGENT_NAME_HEADER: name,
                },
            )


async def add_tokens(database_url: str, agent_name: str = "studio-pc") -> tuple[str, str]:
    agent_token, reader_token = new_token("agent"), new_token("reader")
    store = open_store(database_url)
    await store.open()
    try:
        await store.add_token(agent_name, "agent", hash_token(agent_token))
        await store.add_token("dashboard", "reader", hash_token(reader_token))
    finally:
        await store.close()
    return agent_token, reader_token


async def add_agent_tokens(database_url: str, names: list[str]) -> list[str]:
    """One agent token per name (each binds to the first agent id it sends)."""
    tokens = [new_token("agent") for _ in names]
    store = open_store(database_url)
    await store.open()
    try:
        for name, token in zip(names, tokens, strict=True):
            await store.add_token(name, "agent", hash_token(token))
    finally:
        await store.close()
    return tokens


@contextlib.asynccontextmanager
async def running_collector(database_url: str, **options: Any) -> AsyncIterator[RunningCollector]:
    """`options`: create_app's keyword arguments (body_deadline_s, ...)."""
    agent_token, reader_token = await add_tokens(database_url)
    port = free_port()
    app = create_app(open_store(database_url), events_poll_s=0.05, **options)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, lifespan="on"))  # as `collector serve`
    task = asyncio.create_task(server.serve())
    try:
        await async_wait_until(lambda: server.started or task.done(), 20, "the collector to start")
        if task.done():
            task.result()
        yield RunningCollector(f"http://127.0.0.1:{port}", agent_token, reader_token, database_url)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def tick(seq: int, *, overall: str = "ok", session_id: str | None = None, streaming: bool = True) -> str:
    taken_at = (T0 + timedelta(seconds=seq)).isoformat()
    record: dict[str, Any] = {
        "seq": seq,
        "type": "tick",
        "schema_version": 1,
        "snapshot": {
            "taken_at": taken_at,
            "overall": overall,
            "agent": {"platform": "twitch"},
            "obs": {"streaming": streaming, "output_bitrate_bps": 6_000_000.0 - seq},
            "system": {"cpu_usage_ratio": 0.25},
            "alerts": [
                {
                    "id": "cpu_high",
                    "kind": "cpu_high",
                    "severity": "warning",
                    "message": "CPU at 91 %",
                    "since": taken_at,
                }
            ]
            if overall != "ok"
            else [],
        },
    }
    if session_id is not None:
        record["session_id"] = session_id
    return json.dumps(record, separators=(",", ":"))


def other(seq: int, kind: str, **fields: Any) -> str:
    record = {"seq": seq, "type": kind, "at": (T0 + timedelta(seconds=seq)).isoformat(), **fields}
    return json.dumps(record, separators=(",", ":"))

"""The agent and the collector speak one HTTP vocabulary: for 401, 403, 404, 405, 413 and 422 they answer the
same error body (the same `error`, and the same detail where the cause is the same) with the same headers,
each a real server on loopback. The agent has one token and so no 403: the collector's two 403 paths (a read
route through FastAPI, ingest through its fast path) must agree with each other instead."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.models.shipping import AGENT_ID_HEADER, INGEST_PATH
from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.collector.helpers import RunningCollector, running_collector

AGENT_TOKEN = "vocabulary-agent-token-1234"
HEADERS = ("content-type", "www-authenticate", "allow", "connection")


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, API__TOKEN=AGENT_TOKEN)
    server = AgentServer(settings, Agent(settings, []))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            yield http
    finally:
        await server.stop()


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[RunningCollector]:
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite3'}") as running:
        yield running


def answer(response: httpx.Response) -> tuple[int, str, dict[str, str]]:
    headers = {name: response.headers[name] for name in HEADERS if name in response.headers}
    return response.status_code, response.json()["error"], headers


async def test_both_answer_the_same_error_bodies_and_headers(
    agent: httpx.AsyncClient, collector: RunningCollector
) -> None:
    agent_auth = {"authorization": f"Bearer {AGENT_TOKEN}"}
    reader_auth = {"authorization": f"Bearer {collector.reader_token}"}
    async with httpx.AsyncClient(base_url=collector.url, timeout=10) as fleet:
        # 401: no token, and a token nobody issued.
        for header in ({}, {"authorization": "Bearer not-a-token"}):
            mine, theirs = (
                await agent.get("/api/v1/sessions", headers=header),
                await fleet.get("/api/v1/sessions", headers=header),
            )
            assert answer(mine) == answer(theirs)
            assert answer(mine)[:2] == (401, "unauthorized")
            assert answer(mine)[2]["www-authenticate"] == 'Bearer realm="streamhealth"'
        through_fast_path = await fleet.post(INGEST_PATH, content=b"", headers={AGENT_ID_HEADER: "agent-1"})
        # The fast path answers before reading the body, so it also closes the connection.
        assert answer(through_fast_path) == (*answer(theirs)[:2], {**answer(theirs)[2], "connection": "close"})

        # 403: the collector's read route given an agent token, and ingest given a read token.
        read_with_agent_token = await fleet.get(
            "/api/v1/sessions", headers={"authorization": f"Bearer {collector.agent_token}"}
        )
        ingest_with_read_token = await fleet.post(
            INGEST_PATH, content=b"", headers={**reader_auth, AGENT_ID_HEADER: "agent-1"}
        )
        assert answer(read_with_agent_token) == (403, "forbidden", {"content-type": "application/json"})
        assert answer(ingest_with_read_token) == (
            403,
            "forbidden",
            {"content-type": "application/json", "connection": "close"},
        )

        # 404, 405, 413: the same cause, the same body word for word.
        cases = [
            ("GET", "/api/v1/no-such-thing", None),
            ("DELETE", "/api/v1/sessions", None),  # both serve GET there and nothing else
            ("GET", "/api/v1/sessions", b"x" * 70_000),  # a body over the limit, on any route
        ]
        for method, path, content in cases:
            mine = await agent.request(method, path, content=content, headers=agent_auth)
            theirs = await fleet.request(method, path, content=content, headers=reader_auth)
            assert answer(mine) == answer(theirs), (method, path)
            assert mine.json() == theirs.json(), (method, path)
        assert [answer(await agent.request(m, p, content=c, headers=agent_auth))[:2] for m, p, c in cases] == [
            (404, "not found"), (405, "method not allowed"), (413, "payload too large"),
        ]  # fmt: skip

        # 422: a query parameter that is not a number; the detail names each side's own parameter.
        mine = await agent.get("/api/v1/history?max_points=many", headers=agent_auth)
        theirs = await fleet.get("/api/v1/sessions?limit=many", headers=reader_auth)
        assert answer(mine) == answer(theirs)
        assert answer(mine)[:2] == (422, "bad request")
        assert re.sub(r"query\.\w+", "query.X", mine.json()["detail"]) == re.sub(
            r"query\.\w+", "query.X", theirs.json()["detail"]
        )

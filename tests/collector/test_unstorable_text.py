"""Text the store cannot hold or the read API could not serve is a 400 for that batch alone; both stores.

On PostgreSQL a NUL in a stored column used to fail the whole group commit (a 503 for every agent whose
batch shared it), and 100k-deep nesting answered a plain-text 500 on both stores, retried for ever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from agent.models.shipping import AGENT_ID_HEADER, INGEST_PATH
from collector.ingest import MAX_JSON_DEPTH, BatchError, IngestRecord, ParsedBatch
from collector.store import open_store
from tests.collector.helpers import T0, RunningCollector, other, running_collector, tick

pytestmark = pytest.mark.integration


@pytest.fixture
async def collector(database_url: str) -> AsyncIterator[RunningCollector]:
    async with running_collector(database_url) as running:
        yield running


def nested(depth: int) -> str:
    return '{"seq":1,"type":"x","at":"' + T0.isoformat() + '","deep":' + "[" * depth + "]" * depth + "}"


UNSTORABLE = {
    "NUL in session_id": other(1, "tick", session_id="s\u00001"),
    "NUL in type": json.dumps({"seq": 1, "type": "ti\u0000ck", "at": T0.isoformat()}),
    "NUL in platform": other(1, "session_summary", session_id="s1", platform="twitch\u0000"),
    "lone surrogate": other(1, "alert", message="\ud800"),
    "huge number": '{"seq":1,"type":"x","at":"' + T0.isoformat() + '","v":1e400}',
    "NaN": '{"seq":1,"type":"x","at":"' + T0.isoformat() + '","v":NaN}',
    "100k-deep nesting": nested(100_000),
    "nesting past the limit": nested(MAX_JSON_DEPTH),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
async def test_text_the_store_cannot_hold_is_a_400_naming_the_line(collector: RunningCollector, case: str) -> None:
    response = await collector.ship([tick(1), UNSTORABLE[case]])
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert "line 2" in response.json()["detail"] and response.json()["error"] == "bad request"
    assert (await collector.ship([tick(1)])).json()["accepted"] == 1  # nothing of it stored; serving on


async def test_invalid_utf8_is_a_400(collector: RunningCollector) -> None:
    import gzip

    import httpx

    body = gzip.compress(tick(1).encode() + b"\n" + b'{"seq":2,"type":"\xff\xfe"}\n')
    async with httpx.AsyncClient(base_url=collector.url) as http:
        response = await http.post(
            INGEST_PATH,
            content=body,
            headers={
                "Authorization": f"Bearer {collector.agent_token}",
                AGENT_ID_HEADER: "agent-a",
                "Content-Encoding": "gzip",
            },
        )
    assert response.status_code == 400 and "line 2" in response.json()["detail"]


async def test_nesting_up_to_the_limit_is_stored_as_sent(collector: RunningCollector) -> None:
    line = nested(MAX_JSON_DEPTH - 1)  # the record's object plus the arrays: exactly MAX_JSON_DEPTH levels
    assert (await collector.ship([line])).status_code == 200
    async with collector.reader() as http:
        records = (await http.get("/api/v1/agents/agent-a/records")).json()
    assert [record["line"] for record in records] == [line]


async def test_one_agents_unstorable_batches_never_fail_anothers(collector: RunningCollector) -> None:
    """Sent at once, so that the stores commit them in the same groups."""
    await collector.token_for("agent-b")
    good = [collector.ship([tick(seq)], agent_id="agent-b") for seq in range(1, 41)]
    bad = [collector.ship([UNSTORABLE["NUL in session_id"]], agent_id="agent-a") for _ in range(40)]
    answers = await asyncio.gather(*good, *bad)
    assert [answer.status_code for answer in answers[:40]] == [200] * 40
    assert [answer.status_code for answer in answers[40:]] == [400] * 40


async def test_the_store_refuses_a_batch_it_cannot_hold_alone_and_commits_its_group(database_url: str) -> None:
    """Behind ingest's own checks: what the database itself refuses is that batch's 400, not the group's 503."""
    store = open_store(database_url)
    await store.open()

    def batch(seq: int, session_id: str) -> ParsedBatch:
        line = other(seq, "tick", session_id="ok")
        return ParsedBatch(records=[IngestRecord(seq, "tick", T0 + timedelta(seconds=seq), session_id, line)])

    try:
        outcomes = await asyncio.gather(
            *(store.ingest("agent-b", "b", "b", batch(seq, "fine")) for seq in range(1, 11)),
            store.ingest("agent-a", "a", "a", batch(1, "lone \ud800 surrogate")),
            *(store.ingest("agent-b", "b", "b", batch(seq, "fine")) for seq in range(11, 21)),
            return_exceptions=True,
        )
        refused = outcomes.pop(10)
        assert isinstance(refused, BatchError) and refused.status == 400
        assert all(not isinstance(outcome, BaseException) and outcome.accepted == 1 for outcome in outcomes)
        assert [seq for seq, _ in await store.records("agent-b", 0, 100)] == list(range(1, 21))
    finally:
        await store.close()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sessions?agent=a%00b",
        "/api/v1/sessions?platform=twitch%00",
        "/api/v1/sessions/s%001",
        "/api/v1/sessions/s1?agent=%00",
        "/api/v1/agents/a%00b/records",
        "/api/v1/agents/a%00b/minutes",
        "/api/v1/agents/a%00b/health",
        "/api/v1/agents/a%00b/history?metric=system.cpu_usage_ratio",
    ],
)
async def test_read_parameters_the_store_cannot_hold_are_a_422(collector: RunningCollector, path: str) -> None:
    async with collector.reader() as http:
        response = await http.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "bad request"


async def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_its_connection_closed(
    database_url: str,
) -> None:
    async with running_collector(database_url, body_deadline_s=1.0) as collector:
        port = int(collector.url.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                f"POST {INGEST_PATH} HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {collector.agent_token}\r\n"
                f"{AGENT_ID_HEADER}: agent-a\r\nContent-Length: 100000\r\n\r\n"
            ).encode()
            + b"x" * 10
        )
        await writer.drain()

        async def trickle() -> None:
            for _ in range(75):
                await asyncio.sleep(0.2)
                writer.write(b"x")
                await writer.drain()

        trickling = asyncio.create_task(trickle())
        try:
            answer = await asyncio.wait_for(reader.read(), 10)  # read() returns once the collector closes
        finally:
            trickling.cancel()
            writer.close()
        took = loop.time() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive within 1 s" in answer
    assert took < 6.0  # closed at the deadline, while the client still had 14 s of trickling to go

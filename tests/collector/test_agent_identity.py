"""An agent token writes under its own agent only, and sessions are an agent's: both stores, real collector.

Each attack here was seen working against an earlier collector (issue 22): another agent's token storing
lines under a victim's id, its forged seqs later dropping the victim's real lines as duplicates, and a
session summary replaced by another agent's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from collector.store import open_store
from collector.tokens import hash_token, new_token
from tests.collector.helpers import T0, RunningCollector, other, running_collector, tick

pytestmark = pytest.mark.integration


@pytest.fixture
async def collector(database_url: str) -> AsyncIterator[RunningCollector]:
    async with running_collector(database_url) as running:
        yield running


async def stored_seqs(collector: RunningCollector, agent_id: str) -> list[int]:
    async with collector.reader() as http:
        response = await http.get(f"/api/v1/agents/{agent_id}/records", params={"limit": 10000})
    response.raise_for_status()
    return [record["seq"] for record in response.json()]


async def test_a_token_is_bound_to_the_first_agent_id_it_sends_and_refused_for_any_other(
    collector: RunningCollector,
) -> None:
    token_b = await collector.token_for("agent-b")
    assert (await collector.ship([tick(1)], agent_id="agent-b")).status_code == 200  # binds token_b to agent-b

    forged = await collector.ship([tick(seq) for seq in range(1, 61)], agent_id="agent-a", token=token_b)
    assert forged.status_code == 403
    assert "belongs to agent 'agent-b'" in forged.json()["detail"]
    assert await stored_seqs(collector, "agent-a") == []

    # agent-a's real lines, sent afterwards, are all stored: none taken for a duplicate of a forgery
    real = await collector.ship([tick(seq) for seq in range(1, 61)], agent_id="agent-a")
    assert real.json() == {"accepted": 60, "duplicates": 0, "last_seq": 60}
    assert await stored_seqs(collector, "agent-a") == list(range(1, 61))


async def test_an_unused_token_cannot_claim_an_agent_id_another_token_holds(collector: RunningCollector) -> None:
    assert (await collector.ship([tick(1)], agent_id="agent-a")).status_code == 200
    assert collector.database_url is not None
    fresh = new_token("agent")
    store = open_store(collector.database_url)
    await store.open()
    try:
        await store.add_token("intruder", "agent", hash_token(fresh))
    finally:
        await store.close()
    near_the_end = json.dumps({"seq": 2**63 - 1, "type": "tick", "at": T0.isoformat()})
    claim = await collector.ship([near_the_end], agent_id="agent-a", token=fresh)
    assert claim.status_code == 403 and "belongs to another token" in claim.json()["detail"]
    assert await stored_seqs(collector, "agent-a") == [1]
    # still unbound: it may serve an agent of its own
    assert (await collector.ship([tick(1)], agent_id="intruder-pc", token=fresh)).status_code == 200


async def test_a_token_created_for_an_agent_id_writes_only_under_it(collector: RunningCollector) -> None:
    assert collector.database_url is not None
    token = new_token("agent")
    store = open_store(collector.database_url)
    await store.open()
    try:
        await store.add_token("van-2", "agent", hash_token(token), "van-2-id")
    finally:
        await store.close()
    assert (await collector.ship([tick(1)], agent_id="someone-else", token=token)).status_code == 403
    assert (await collector.ship([tick(1)], agent_id="van-2-id", token=token)).status_code == 200


async def test_agent_ids_are_short_and_url_safe(collector: RunningCollector) -> None:
    for bad in ("a/b", "x" * 101, "-leading", "a b"):
        response = await collector.ship([tick(1)], agent_id=bad, token=collector.agent_token)
        assert response.status_code == 400, bad
    # refused before binding: the token is still free for its agent
    assert (await collector.ship([tick(1)], agent_id="agent-a")).status_code == 200


async def test_sessions_are_keyed_by_agent_so_one_agent_cannot_replace_anothers(collector: RunningCollector) -> None:
    session = "20261130T120000Z-5f2c"
    victim = [tick(1, session_id=session), other(2, "session_summary", session_id=session, platform="twitch")]
    assert (await collector.ship(victim, agent_id="agent-a")).status_code == 200
    forged = [other(1, "session_summary", session_id=session, platform="FORGED-PLATFORM", health_score=0)]
    assert (await collector.ship(forged, agent_id="agent-b")).status_code == 200  # b's own session, same id

    async with collector.reader() as http:
        mine = (await http.get("/api/v1/sessions", params={"agent": "agent-a"})).json()
        assert [(s["session_id"], s["platform"], s["records"]) for s in mine] == [(session, "twitch", 2)]
        ambiguous = await http.get(f"/api/v1/sessions/{session}")
        assert ambiguous.status_code == 409 and "?agent=" in ambiguous.json()["detail"]
        detail = (await http.get(f"/api/v1/sessions/{session}", params={"agent": "agent-a"})).json()
        assert detail["agent_id"] == "agent-a" and detail["platform"] == "twitch"
        assert detail["summary"]["platform"] == "twitch"
        assert list(detail["series"]) and all(len(points) == 1 for points in detail["series"].values())
        theirs = (await http.get(f"/api/v1/sessions/{session}", params={"agent": "agent-b"})).json()
        assert theirs["platform"] == "FORGED-PLATFORM" and theirs["agent_id"] == "agent-b"


async def test_records_of_one_agent_are_never_counted_in_anothers_session(collector: RunningCollector) -> None:
    await collector.ship([tick(1, session_id="s1", overall="ok")], agent_id="agent-a")
    await collector.ship([tick(1, session_id="s1", overall="critical")], agent_id="agent-b")
    async with collector.reader() as http:
        detail = (await http.get("/api/v1/sessions/s1", params={"agent": "agent-a"})).json()
    assert detail["worst_state"] == "ok" and detail["records"] == 1
    assert json.dumps(detail).count("critical") == 0

"""The collector against both stores (SQLite and a real PostgreSQL): ingest once, refuse cleanly, read back."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse

from collector.store import open_store
from tests.collector.helpers import T0, RunningCollector, other, running_collector, tick

pytestmark = pytest.mark.integration


@pytest.fixture
async def collector(database_url: str) -> AsyncIterator[RunningCollector]:
    async with running_collector(database_url) as running:
        yield running


async def stored_lines(collector: RunningCollector, agent_id: str = "agent-a") -> list[str]:
    async with collector.reader() as http:
        response = await http.get(f"/api/v1/agents/{agent_id}/records", params={"limit": 10000})
    response.raise_for_status()
    return [record["line"] for record in response.json()]


async def test_each_record_is_stored_once_and_read_back_exactly(collector: RunningCollector) -> None:
    lines = [tick(seq) for seq in range(1, 6)] + [other(6, "some_future_record", anything={"nested": [1, 2]})]
    first = await collector.ship(lines)
    assert first.status_code == 200 and first.json() == {"accepted": 6, "duplicates": 0, "last_seq": 6}
    again = await collector.ship(lines[3:])  # a resent batch after a lost ack
    assert again.json() == {"accepted": 0, "duplicates": 3, "last_seq": 6}
    assert await stored_lines(collector) == lines


async def test_a_malformed_batch_stores_nothing_names_the_line_and_the_collector_goes_on(
    collector: RunningCollector,
) -> None:
    bad = await collector.ship([tick(1), '{"seq":2,"type":"tick"', tick(3)])
    assert bad.status_code == 400
    body = bad.json()
    assert body["error"] == "bad request" and "line 2" in body["detail"]
    for lines, why in (
        ([json.dumps({"type": "tick"})], "no integer seq"),
        ([json.dumps({"seq": 1})], "no type"),
        ([json.dumps({"seq": 1, "type": "x", "at": "yesterday"})], "unreadable time"),
    ):
        response = await collector.ship(lines)
        assert response.status_code == 400 and why in response.json()["detail"]
    assert await stored_lines(collector) == []
    assert (await collector.ship([tick(1)])).json()["accepted"] == 1


async def test_tokens_bodies_and_sizes_are_checked_before_anything_is_stored(collector: RunningCollector) -> None:
    assert (await collector.ship([tick(1)], token="sha_not-a-token")).status_code == 401
    assert (await collector.ship([tick(1)], token=collector.reader_token)).status_code == 403
    async with httpx.AsyncClient(base_url=collector.url) as http:
        headers = {"Authorization": f"Bearer {collector.agent_token}", "X-Streamhealth-Agent-Id": "agent-a"}
        not_gzip = await http.post(
            "/api/v1/ingest", content=b"\x1f\x8bnope", headers={**headers, "Content-Encoding": "gzip"}
        )
        assert not_gzip.status_code == 400 and not_gzip.json()["error"] == "bad request"
        bomb = gzip.compress(b"\n" * (65 * 1024 * 1024))  # 65 MiB of newlines in ~64 KiB
        too_big = await http.post("/api/v1/ingest", content=bomb, headers={**headers, "Content-Encoding": "gzip"})
        assert too_big.status_code == 413
        agents_as_agent = await http.get("/api/v1/agents", headers=headers)
        assert agents_as_agent.status_code == 403 and "read token" in agents_as_agent.json()["detail"]
    assert await stored_lines(collector) == []


async def test_agents_show_last_seen_state_records_last_seq_latest_snapshot_and_alerts(
    collector: RunningCollector,
) -> None:
    await collector.ship([tick(1), tick(2, overall="warning")], agent_id="agent-a", name="studio-pc")
    await collector.ship([tick(7)], agent_id="agent-b", name="van-2")
    async with collector.reader() as http:
        agents = {agent["name"]: agent for agent in (await http.get("/api/v1/agents")).json()}
    studio = agents["studio-pc"]
    assert studio["records"] == 2 and studio["last_seq"] == 2 and studio["state"] == "warning"
    assert studio["stream_state"] == "live" and studio["latest"]["platform"] == "twitch"
    assert [alert["id"] for alert in studio["active_alerts"]] == ["cpu_high"]
    assert studio["token_name"] == "studio-pc" and studio["last_seen"]
    assert agents["van-2"]["state"] == "ok" and agents["van-2"]["last_seq"] == 7


async def test_sessions_are_found_in_records_of_any_type_and_filtered(collector: RunningCollector) -> None:
    session = "s-2026-11-30-1"
    lines = [tick(1, session_id=session), tick(2, overall="critical", session_id=session)]
    lines.append(other(3, "alert", session_id=session, change={"change": "raised", "alert": {"id": "cpu_high"}}))
    lines.append(other(4, "session_summary", session_id=session, platform="twitch", health_score=71))
    lines.append(tick(5, session_id="s-other"))
    await collector.ship(lines)
    await collector.ship(lines)  # resent: the session's counts do not double
    async with collector.reader() as http:
        found = (await http.get("/api/v1/sessions", params={"agent": "studio-pc", "worst_state": "critical"})).json()
        assert [s["session_id"] for s in found] == [session]
        assert found[0]["records"] == 4 and found[0]["summary"]["health_score"] == 71
        assert found[0]["platform"] == "twitch" and found[0]["worst_state"] == "critical"
        assert (await http.get("/api/v1/sessions", params={"platform": "youtube"})).json() == []
        later = (T0 + timedelta(hours=1)).isoformat()
        assert (await http.get("/api/v1/sessions", params={"since": later})).json() == []
        detail = (await http.get(f"/api/v1/sessions/{session}")).json()
        assert [a["change"]["alert"]["id"] for a in detail["alerts"]] == ["cpu_high"]
        assert [p["value"] for p in detail["series"]["obs.output_bitrate_bps"]] == [5_999_999.0, 5_999_998.0]
        missing = await http.get("/api/v1/sessions/nope")
        assert missing.status_code == 404 and missing.json()["error"] == "not found"


async def test_the_event_stream_tells_readers_when_an_agent_changes(collector: RunningCollector) -> None:
    async with collector.reader() as http, aconnect_sse(http, "GET", "/api/v1/events") as events:
        await collector.ship([tick(1)])
        async for event in events.aiter_sse():
            if event.event == "agent":
                assert json.loads(event.data)["last_seq"] == 1
                break


async def test_metrics_and_openapi(collector: RunningCollector) -> None:
    await collector.ship([tick(1), tick(2)])
    await collector.ship([tick(2)])
    async with collector.reader() as http:
        text = (await http.get("/metrics")).text
        assert 'streamhealth_collector_records_total{outcome="stored"} 2.0' in text
        assert 'streamhealth_collector_records_total{outcome="duplicate"} 1.0' in text
        assert 'streamhealth_collector_agent_records{agent="studio-pc"} 2.0' in text
        spec = (await http.get("/openapi.json")).json()
    ingest = spec["paths"]["/api/v1/ingest"]["post"]["responses"]
    assert ingest["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "/api/v1/sessions/{session_id}" in spec["paths"]


async def test_ticks_roll_up_per_minute_once_each_even_when_resent(collector: RunningCollector) -> None:
    lines = [tick(seq, overall="warning" if seq == 70 else "ok") for seq in range(1, 121)]  # 12:00:01..12:02:00
    await collector.ship(lines[:80])
    await collector.ship(lines[60:])  # 20 resent ticks must not count twice
    async with collector.reader() as http:
        minutes = (
            await http.get(
                "/api/v1/agents/agent-a/minutes",
                params={"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()},
            )
        ).json()
    assert [m["ticks"] for m in minutes] == [59, 60, 1]
    assert [m["worst_state"] for m in minutes] == ["ok", "warning", "ok"]
    assert minutes[0]["cpu_usage_ratio_mean"] == pytest.approx(0.25)
    assert minutes[0]["output_bitrate_bps_mean"] == pytest.approx(6_000_000 - 30)  # mean of seq 1..59


async def test_retention_drops_old_raw_records_and_keeps_sessions(database_url: str) -> None:
    async with running_collector(database_url) as collector:
        await collector.ship([tick(1, session_id="s1"), other(2, "session_summary", session_id="s1")])
        await collector.ship([tick(10_000_000)])  # ~116 days after T0
    store = open_store(database_url)
    await store.open()
    try:
        assert await store.prune(T0 + timedelta(days=30)) == 2
        assert [seq for seq, _ in await store.records("agent-a", 0, 10)] == [10_000_000]
        session = await store.session("agent-a", "s1")
        assert session is not None and session.summary_line is not None
        everything = (T0 - timedelta(days=1), T0 + timedelta(days=365))
        assert len(await store.minutes("agent-a", *everything)) == 2  # rollups outlive raw records
        await store.prune(T0 + timedelta(days=30), rollups_before=T0 + timedelta(days=30))
        assert len(await store.minutes("agent-a", *everything)) == 1
    finally:
        await store.close()


def test_token_command_prints_a_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    database = tmp_path / "c.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "collector", "token", "studio-pc", "--database", f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("sha_") and len(token) > 40 and "shown once" in result.stderr
    assert token.encode() not in database.read_bytes()

"""The collector's fleet side: Prometheus discovery and exposition, the fleet view, each agent forwarded."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx_sse import aconnect_sse
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.api.metrics import build_registry
from agent.models import HealthSnapshot, utc_now
from tests.collector.fleet_data import fleet_snapshot, recent_ticks, tick_line
from tests.collector.helpers import RunningCollector, running_collector
from tests.peers.wait import async_wait_until
from tests.tui import data

pytestmark = pytest.mark.integration


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[RunningCollector]:
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite3'}") as running:
        yield running


@pytest.fixture
async def any_collector(database_url: str) -> AsyncIterator[RunningCollector]:
    """A collector on each store: SQLite and a real PostgreSQL."""
    async with running_collector(database_url) as running:
        yield running


async def fleet(collector: RunningCollector) -> dict[str, dict[str, object]]:
    async with collector.reader() as http:
        response = await http.get("/api/v1/fleet")
    response.raise_for_status()
    return {row["name"]: row for row in response.json()["agents"]}


async def test_discovery_lists_each_reachable_agent_with_its_name_and_never_a_token(
    collector: RunningCollector,
) -> None:
    await collector.ship(recent_ticks(2, api_url="http://10.1.2.3:8765"), agent_id="a1", name="studio-pc")
    await collector.ship(recent_ticks(2, api_url="http://127.0.0.1:8765"), agent_id="a2", name="laptop")
    await collector.ship(recent_ticks(2, api_url=None), agent_id="a3", name="old-agent")
    async with collector.reader() as http:
        groups = (await http.get("/api/v1/prometheus/targets")).json()
        with_loopback = (await http.get("/api/v1/prometheus/targets", params={"include_loopback": "true"})).json()
        anonymous = await http.get("/api/v1/prometheus/targets", headers={"Authorization": ""})
    assert groups == [
        {"targets": ["10.1.2.3:8765"], "labels": {"agent": "studio-pc", "__scheme__": "http", "platform": "twitch"}}
    ]
    assert sorted(group["targets"][0] for group in with_loopback) == ["10.1.2.3:8765", "127.0.0.1:8765"]
    assert anonymous.status_code == 401
    assert collector.agent_token not in json.dumps(with_loopback)


async def test_the_collector_exposes_each_agents_latest_figures_under_the_agents_own_names(
    collector: RunningCollector,
) -> None:
    await collector.ship(recent_ticks(3), agent_id="a1", name="studio-pc")
    await collector.ship(recent_ticks(3, cpu=0.9), agent_id="a2", name="laptop")
    async with collector.reader() as http:
        text = (await http.get("/metrics")).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    cpu = {sample.labels["agent"]: sample.value for sample in families["streamhealth_cpu_usage_ratio"].samples}
    assert cpu == {"studio-pc": 0.46, "laptop": 0.9}
    # The same names as the agent's own /metrics for the same snapshot, each with the agent label.
    own = generate_latest(build_registry(lambda: fleet_snapshot(utc_now()))).decode()
    own_names = {family.name for family in text_string_to_metric_families(own)}
    assert own_names <= set(families)
    for name in own_names:
        assert all(sample.labels.get("agent") for sample in families[name].samples), name
    reporting = families["streamhealth_collector_agent_reporting"].samples
    assert {sample.labels["agent"]: sample.value for sample in reporting} == {"studio-pc": 1.0, "laptop": 1.0}
    if shutil.which("promtool"):
        # The collector adds no problem of its own: whatever promtool says of it, it says of the agent's too.
        assert promtool_problems(text) <= promtool_problems(own), promtool_problems(text)


def promtool_problems(exposition: str) -> set[str]:
    checked = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert checked.returncode in (0, 3), checked.stderr  # 3: lint problems, listed one a line
    return set((checked.stdout + checked.stderr).splitlines())


async def test_an_agent_that_stops_reporting_loses_contact_within_three_intervals_and_comes_back(
    collector: RunningCollector,
) -> None:
    await collector.ship(recent_ticks(5), agent_id="a1", name="studio-pc")
    first = (await fleet(collector))["studio-pc"]
    assert first["stream_state"] == "live" and first["interval_s"] == 1.0
    seen: list[tuple[float, str]] = []

    async def lost() -> bool:
        row = (await fleet(collector))["studio-pc"]
        seen.append((float(row["silent_s"]), str(row["stream_state"])))  # type: ignore[arg-type]
        return row["stream_state"] == "lost_contact"

    await async_wait_until(lost, 15, "lost contact")
    # Never lost before 3 silent intervals; lost once past them (the 0.5 s shared look, plus slack for a
    # loaded machine, is the only delay: exact timings belong in a bench).
    assert all(state != "lost_contact" for silent_s, state in seen if silent_s <= 3.0), seen
    assert 3.0 < seen[-1][0] <= 3.0 + 6.0, seen[-1]
    async with collector.reader() as http:
        view = (await http.get("/api/v1/fleet")).json()
        text = (await http.get("/metrics")).text
    assert [alert["kind"] for alert in view["alerts"]] == ["lost_contact"]
    assert view["alerts"][0]["severity"] == "critical"  # it was live
    assert 'streamhealth_collector_agent_reporting{agent="studio-pc"} 0.0' in text
    assert 'streamhealth_cpu_usage_ratio{agent="studio-pc"}' not in text  # stale figures would look live

    await collector.ship(recent_ticks(1, first_seq=6), agent_id="a1", name="studio-pc")

    async def back() -> bool:
        async with collector.reader() as http:
            view = (await http.get("/api/v1/fleet")).json()
        return bool(view["agents"][0]["stream_state"] == "live" and view["alerts"] == [])

    await async_wait_until(back, 5, "contact back")  # a look at the store is shared for 0.5 s


async def test_fleet_rows_carry_drops_of_the_last_minute_by_cause_and_sort_by_trouble(
    any_collector: RunningCollector,
) -> None:
    collector = any_collector
    await collector.ship(recent_ticks(90, step_drops=2), agent_id="a1", name="zz-live")
    await collector.ship(recent_ticks(3, alerts=[data.alert()]), agent_id="a2", name="yy-degraded")
    await collector.ship(recent_ticks(3, streaming=False), agent_id="a3", name="aa-offline")
    await collector.ship(recent_ticks(3, streaming=False, jobs_running=["preflight"]), agent_id="a4", name="bb-pre")
    rows = await fleet(collector)
    assert list(rows) == ["yy-degraded", "bb-pre", "zz-live", "aa-offline"]
    assert rows["zz-live"]["dropped_last_minute"] == {"network": 120, "encoding": 0, "rendering": 0}
    assert rows["zz-live"]["target_bitrate_bps"] == 6_160_000
    assert rows["yy-degraded"]["worst_alert"]["severity"] == "critical"  # type: ignore[index]
    assert rows["bb-pre"]["stream_state"] == "preflight"


async def test_an_agents_snapshots_events_alerts_and_history_are_forwarded_like_the_agents_own_api(
    any_collector: RunningCollector,
) -> None:
    collector = any_collector
    await collector.ship(recent_ticks(10), agent_id="a1", name="studio-pc")
    async with collector.reader() as http:
        health = HealthSnapshot.model_validate((await http.get("/api/v1/agents/a1/health")).json())
        history = (await http.get("/api/v1/agents/a1/history", params={"metric": "obs.output_bitrate_bps"})).json()
        alerts = (await http.get("/api/v1/agents/a1/alerts")).json()
        missing = await http.get("/api/v1/agents/nobody/health")
        async with aconnect_sse(http, "GET", "/api/v1/agents/a1/events") as events:
            seen: list[tuple[str, str]] = []
            async for event in events.aiter_sse():
                seen.append((event.event, event.data))
                if len(seen) == 1:
                    await collector.ship([tick_line(11, fleet_snapshot(utc_now(), cpu=0.77))], agent_id="a1")
                if len(seen) == 2:
                    break
    assert health.obs is not None and health.obs.frames_dropped_network_total == 1018
    assert len(history["points"]) == 10 and history["points"][-1][1] == 5_820_000
    assert alerts == {"active": [], "recently_cleared": []}
    assert missing.status_code == 404
    assert [kind for kind, _ in seen] == ["tick", "tick"]
    second = json.loads(seen[1][1])
    assert second["seq"] == 11 and second["snapshot"]["system"]["cpu_usage_ratio"] == 0.77


async def test_a_tick_shaped_unlike_ours_keeps_its_row_without_figures_and_the_fleet_keeps_serving(
    collector: RunningCollector,
) -> None:
    at = utc_now().isoformat()
    odd = {
        "seq": 1,
        "type": "tick",
        "snapshot": {"taken_at": at, "system": {"cpu_usage_ratio": "x"}, "shipping": {"lines_waiting": "many"}},
    }
    await collector.ship([json.dumps(odd)], agent_id="odd", name="odd-agent")
    await collector.ship(recent_ticks(2), agent_id="a1", name="studio-pc")
    async with collector.reader() as http:
        fleet_answer = await http.get("/api/v1/fleet")
        metrics_answer = await http.get("/metrics")
        health = await http.get("/api/v1/agents/odd/health")
    rows = {row["name"]: row for row in fleet_answer.json()["agents"]}
    assert rows["odd-agent"]["cpu_ratio"] is None and rows["studio-pc"]["cpu_ratio"] == 0.46
    assert (
        metrics_answer.status_code == 200 and 'streamhealth_cpu_usage_ratio{agent="studio-pc"}' in metrics_answer.text
    )
    assert health.status_code == 404  # no tick this collector can read

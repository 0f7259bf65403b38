"""The fleet view end to end: a real collector process, two real agent processes shipping to it, and the
Fleet TUI (Pilot) polling it: rows appear, Enter shows one agent's Live data forwarded by the collector,
Prometheus discovery points at each agent's real /metrics, and a killed agent turns LOST, then comes back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.helpers import add_agent_tokens, add_tokens
from tests.peers.restartable import Process
from tests.peers.wait import async_wait_until, free_port, port_open, wait_until
from tui.fleet_app import AgentLiveScreen, build_fleet_app
from tui.fleet_client import FleetClient
from tui.screens.fleet import FleetScreen
from tui.widgets.fleet_table import FleetTable

pytestmark = pytest.mark.integration


@pytest.fixture
def children() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for child in started:
            child.stop(signal.SIGKILL)


def agent(tmp_path: Path, name: str, url: str, token: str) -> Process:
    env = dict(os.environ)
    env.update(
        {
            "STREAMHEALTH_LOGS__DIR": str(tmp_path / name),
            "STREAMHEALTH_API__PORT": "0",
            "STREAMHEALTH_SAMPLING__INTERVAL_S": "0.25",
            "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
            "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
            "STREAMHEALTH_SOURCES__NETWORK__ENABLED": "false",
            "STREAMHEALTH_SHIP__URL": url,
            "STREAMHEALTH_SHIP__TOKEN": token,
            "STREAMHEALTH_SHIP__AGENT_NAME": name,
            "STREAMHEALTH_SHIP__BATCH_INTERVAL_S": "0.25",
            "STREAMHEALTH_SHIP__MAX_BACKOFF_S": "1",
        }
    )
    return Process([sys.executable, "-m", "tui.cli", "agent"], env, tmp_path / f"{name}.log")


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_the_fleet_view_follows_real_agents_through_a_real_collector(
    tmp_path: Path, children: list[Process]
) -> None:
    database = f"sqlite:///{tmp_path / 'collector.sqlite3'}"
    _, reader_token = await add_tokens(database)
    tokens = dict(
        zip(("studio-a", "studio-b"), await add_agent_tokens(database, ["studio-a", "studio-b"]), strict=True)
    )
    port = free_port()
    collector = Process(
        [sys.executable, "-m", "tui.cli", "collector", "serve", "--database", database, "--port", str(port)],
        dict(os.environ),
        tmp_path / "collector.log",
    )
    children.append(collector)
    collector.start()
    wait_until(lambda: port_open("127.0.0.1", port), 30, "the collector's port")
    url = f"http://127.0.0.1:{port}"
    agents = {name: agent(tmp_path, name, url, tokens[name]) for name in ("studio-a", "studio-b")}
    for child in agents.values():
        children.append(child)
        child.start()

    client = FleetClient(url, reader_token, interval_s=0.25)
    app = build_fleet_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(FleetTable)

        def names() -> list[str]:
            return table.names()

        def state_of(name: str) -> str:
            view = app.fleet_view
            rows = [row for row in view.agents if row.name == name] if view is not None else []
            return rows[0].stream_state if rows else ""

        await until(lambda: sorted(names()) == ["studio-a", "studio-b"], 60, "both agents in the fleet")
        await until(lambda: state_of("studio-a") == "offline" == state_of("studio-b"), 20, "both reporting")

        # Prometheus discovery points at each agent's real API: scrape it there.
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {reader_token}"}, timeout=10) as http:
            groups: list[dict[str, Any]] = []

            async def both_discovered() -> bool:
                # An agent is listed once a shipped tick says where its API listens (the port is bound
                # after the run starts), so the first look may come a tick early.
                nonlocal groups
                answer = await http.get(f"{url}/api/v1/prometheus/targets", params={"include_loopback": "1"})
                groups = answer.json()
                return sorted(group["labels"]["agent"] for group in groups) == ["studio-a", "studio-b"]

            await async_wait_until(both_discovered, 20, "both agents in Prometheus discovery")
            for group in groups:
                scraped = await http.get(f"http://{group['targets'][0]}/metrics")
                assert "streamhealth_cpu_usage_ratio" in scraped.text

            async def fleet_has_cpu_of_studio_a() -> bool:
                # The collector's /metrics follows the records shipped so far: the tick that first carries
                # a CPU figure (psutil needs two readings) may still be on its way. Failed once in CI.
                nonlocal fleet_metrics
                fleet_metrics = (await http.get(f"{url}/metrics")).text
                return 'streamhealth_cpu_usage_ratio{agent="studio-a"}' in fleet_metrics

            fleet_metrics = ""
            with contextlib.suppress(TimeoutError):
                await async_wait_until(fleet_has_cpu_of_studio_a, 20, "studio-a's CPU in the fleet's /metrics")
        assert 'streamhealth_cpu_usage_ratio{agent="studio-a"}' in fleet_metrics

        # Enter: studio-a's Live screen, fed by the collector's forwarding of its records.
        await pilot.press(*"studio-a")
        await until(lambda: names() == ["studio-a"], 10, "the filter")
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, AgentLiveScreen), 10, "the Live screen")
        first = None

        def fresh_tick() -> bool:
            nonlocal first
            snapshot = app.state.snapshot
            if snapshot is None:
                return False
            first = first or snapshot.taken_at
            return snapshot.taken_at > first and snapshot.system is not None

        await until(fresh_tick, 20, "ticks of studio-a through the collector")
        assert app.state.snapshot is not None and app.state.snapshot.agent.api_url is not None
        await pilot.press("escape")
        await until(lambda: isinstance(app.screen, FleetScreen), 10, "back to the fleet")
        await pilot.press("escape")  # clears the filter

        # studio-b dies: LOST within 3 reporting intervals (plus polls), a fleet alert; back when restarted.
        agents["studio-b"].stop(signal.SIGKILL)
        await until(lambda: state_of("studio-b") == "lost_contact", 15, "studio-b to lose contact")
        assert any("studio-b stopped reporting" in n.message for n in app._notifications)
        assert names()[0] == "studio-b"  # trouble on top
        agents["studio-b"].start()
        await until(lambda: state_of("studio-b") == "offline", 60, "studio-b to come back")
        await until(lambda: any("studio-b is reporting again" in n.message for n in app._notifications), 10, "toast")

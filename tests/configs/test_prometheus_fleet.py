"""A real Prometheus with the shipped prometheus.yml finds a real agent through the collector's HTTP service
discovery and scrapes it, and scrapes the whole fleet from the collector's /metrics: both give the same
series names with the agent label."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.collector.fleet_data import tick_line
from tests.collector.helpers import RunningCollector, running_collector
from tests.peers.prometheus import prometheus, prometheus_available
from tests.peers.wait import async_wait_until

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "prometheus" / "prometheus.yml"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not prometheus_available()[0], reason=prometheus_available()[1]),
]


def shipped_config(collector_port: str) -> str:
    """configs/prometheus/prometheus.yml as a team would use it, pointed at the test's collector, scraping fast."""
    config = yaml.safe_load(SHIPPED.read_text())
    config.pop("rule_files", None)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    for job in config["scrape_configs"]:
        job["scrape_interval"] = "1s"
        for sd in job.get("http_sd_configs", []):
            sd["url"] = sd["url"].replace("127.0.0.1:8766", f"127.0.0.1:{collector_port}") + "?include_loopback=true"
            sd["refresh_interval"] = "1s"
        for static in job.get("static_configs", []):
            static["targets"] = [f"127.0.0.1:{collector_port}"]
        if job["job_name"] == "streamhealth-agents":
            job.pop("authorization")  # the test's agent listens on loopback without a token
    return str(yaml.safe_dump(config))


@contextlib.asynccontextmanager
async def shipping(server: AgentServer, collector: RunningCollector) -> AsyncIterator[None]:
    """The agent's real snapshots (with its real api_url) shipped twice a second, as its shipper would."""

    async def ship_forever() -> None:
        seq = 0
        while True:
            seq += 1
            await collector.ship([tick_line(seq, server.agent.snapshot)], agent_id="agent-1", name="studio-pc")
            await asyncio.sleep(0.5)

    task = asyncio.create_task(ship_forever())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_prometheus_discovers_the_agent_through_the_collector_and_scrapes_the_fleet(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, SAMPLING__INTERVAL_S="0.5")
    server = AgentServer(settings, Agent(settings, []))
    await server.start()
    try:
        async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite3'}") as collector:
            port = collector.url.rsplit(":", 1)[1]
            config = shipped_config(port)
            async with shipping(server, collector):
                tokens = {"collector-read-token": collector.reader_token, "agent-token": "unused"}
                with prometheus(config, tokens) as prom:
                    async with httpx.AsyncClient(base_url=prom.url, timeout=10) as client:

                        async def query(expr: str) -> list[Any]:
                            answer = (await client.get("/api/v1/query", params={"query": expr})).json()
                            assert answer["status"] == "success", f"{expr}: {answer}"
                            return list(answer["data"]["result"])

                        direct = 'streamhealth_health_state{job="streamhealth-agents", agent="studio-pc"}'
                        fleet = 'streamhealth_health_state{job="streamhealth-fleet", agent="studio-pc"}'
                        await async_wait_until(lambda: query(direct), 60, "the agent found and scraped")
                        await async_wait_until(lambda: query(fleet), 30, "the fleet scraped from the collector")
                        targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
    finally:
        await server.stop()
    agent_target = next(target for target in targets if target["labels"]["job"] == "streamhealth-agents")
    assert agent_target["scrapeUrl"] == f"{server.url}/metrics"
    assert agent_target["health"] == "up" and agent_target["labels"]["agent"] == "studio-pc"

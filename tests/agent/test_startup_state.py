"""At start-up the agent says `starting`, not `ok`, until its sources have reported: in the snapshot,
the API and /metrics (the TUI's side is in tests/tui/test_starting.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agent.models import Alert, Sample, overall_state, utc_now
from agent.runtime import Agent
from agent.server import AgentServer
from agent.sources.base import PollingSource, SampleSink, Source
from tests.agent.helpers import make_settings, system_sample
from tests.peers.wait import async_wait_until


class GatedSystemSource(PollingSource):
    """A system source whose first reading takes until the test opens the gate (a slow first measurement)."""

    name = "system"

    def __init__(self) -> None:
        super().__init__(interval_s=0.05, timeout_s=60.0)
        self.gate = asyncio.Event()

    async def sample(self) -> Sample:
        await self.gate.wait()
        return system_sample(cpu=0.3)


class SilentSource(Source):
    """A source that never reports: a measurement that hangs, or a push source whose peer never came."""

    def __init__(self, name: str, *, waits_for_peer: bool, stale_after_s: float = 1.0) -> None:
        super().__init__(interval_s=stale_after_s / 3, timeout_s=stale_after_s / 3)
        self.name = name  # type: ignore[misc]  # one class, several test names
        self.waits_for_peer = waits_for_peer  # type: ignore[misc]

    async def run(self, sink: SampleSink) -> None:
        await asyncio.Event().wait()


def _health_state(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "streamhealth_health_state":
            return family.samples[0].value
    raise AssertionError("no streamhealth_health_state in /metrics")


async def test_api_and_metrics_say_starting_until_the_sources_have_reported_then_ok(tmp_path: Path) -> None:
    gated = GatedSystemSource()
    ffmpeg_like = SilentSource("ffmpeg", waits_for_peer=True)  # no ffmpeg runs: must not hold start-up
    agent = Agent(make_settings(tmp_path, SAMPLING__INTERVAL_S="0.1"), [gated, ffmpeg_like], rules=None)
    server = AgentServer(agent.settings, agent)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            await async_wait_until(lambda: agent.ticks >= 2, 10, "two ticks")
            health = (await http.get("/api/v1/health")).json()
            assert health["overall"] == "starting"
            assert health["sources"]["system"]["state"] == "starting"
            assert _health_state((await http.get("/metrics")).text) == -1

            gated.gate.set()

            async def says_ok() -> bool:
                return bool((await http.get("/api/v1/health")).json()["overall"] == "ok")

            await async_wait_until(says_ok, 10, "overall ok once the system source reported")
            assert _health_state((await http.get("/metrics")).text) == 0
            assert (await http.get("/api/v1/health")).json()["sources"]["ffmpeg"]["state"] == "starting"
    finally:
        await server.stop("test")


async def test_a_source_that_never_reports_holds_starting_only_until_it_is_overdue(tmp_path: Path) -> None:
    now = [1000.0]
    hanging = SilentSource("network", waits_for_peer=False, stale_after_s=6.0)
    agent = Agent(make_settings(tmp_path), [hanging], rules=None, clock=lambda: now[0])
    await agent.start()
    try:
        assert agent.tick().overall == "starting"
        now[0] += 5.9
        assert agent.tick().overall == "starting"
        now[0] += 0.2
        snapshot = agent.tick()
        assert snapshot.overall == "ok"  # overdue: the source's own state says it never reported
        assert snapshot.sources["network"].state == "starting"
    finally:
        await agent.stop("test")


async def test_a_failure_counts_as_a_report_and_starting_never_comes_back(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path), [SilentSource("network", waits_for_peer=False)], rules=None)
    assert agent.snapshot.overall == "starting"  # before start(): nothing measured
    agent.report_failure("network", "no route to the ingest")
    assert agent.tick().overall == "ok"
    assert agent.tick().overall == "ok"


def test_an_alert_raised_during_start_up_outranks_starting() -> None:
    alert = Alert(id="cpu", kind="cpu", severity="critical", message="CPU 99%", since=utc_now())
    assert overall_state([alert], measured=False) == "critical"
    assert overall_state([], measured=False) == "starting"
    assert overall_state([], measured=True) == "ok"

"""The wall clock jumps (an NTP correction, a laptop waking up): durations and windows come from the
monotonic clock, wall time only labels. uptime_s, /history?last_s and /runs' durations stay right.

The agent runs with its API on loopback and answers over real HTTP. The wall clock is the one thing
faked: setting the machine's clock would disturb every other process, and libfaketime also shifts
the monotonic deadlines Python sleeps on (clock_nanosleep fails with EINVAL). So the test moves the
agent's wall clock (`agent.runtime.utc_now`) and drives its monotonic clock (`Agent(clock=...)`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent.models import utc_now
from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings, system_sample


async def test_a_wall_clock_set_back_an_hour_changes_no_duration_or_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wall_offset = timedelta()
    monotonic_s = 1000.0
    monkeypatch.setattr("agent.runtime.utc_now", lambda: utc_now() + wall_offset)

    def wall() -> datetime:
        return utc_now() + wall_offset

    settings = make_settings(tmp_path)
    agent = Agent(settings, [], clock=lambda: monotonic_s)
    server = AgentServer(settings, agent)
    await server.start()
    try:

        def one_second() -> None:
            nonlocal monotonic_s
            monotonic_s += 1.0
            agent.publish("system", system_sample(taken_at=wall()))
            agent.tick()

        for _ in range(60):
            one_second()
        wall_offset = timedelta(hours=-1)  # NTP sets the clock back an hour
        for _ in range(10):
            one_second()

        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            health = (await client.get("/api/v1/health")).json()
            history = (await client.get("/api/v1/history?metric=system.cpu_usage_ratio&last_s=10.5")).json()
            runs = (await client.get("/api/v1/runs")).json()["runs"]
    finally:
        await server.stop()

    assert health["agent"]["uptime_s"] == pytest.approx(70, abs=0.01)
    assert len(history["points"]) == 11  # the last 10.5 s at 1 Hz, whatever the labels say
    assert [run["duration_s"] for run in runs if run["current"]] == [pytest.approx(70, abs=0.01)]


async def test_an_alert_still_raises_after_its_duration_when_the_wall_clock_is_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cpu_high needs 10 s above 85 %: with the clock set back an hour 3 s in, it must not wait an hour."""
    wall_offset = timedelta()
    monotonic_s = 1000.0
    monkeypatch.setattr("agent.runtime.utc_now", lambda: utc_now() + wall_offset)
    agent = Agent(make_settings(tmp_path), [], clock=lambda: monotonic_s)
    raised_after_s = None
    for second in range(1, 16):
        monotonic_s += 1.0
        if second == 3:
            wall_offset = timedelta(hours=-1)
        agent.publish("system", system_sample(cpu=0.9, taken_at=utc_now() + wall_offset))
        agent.tick()
        if any(alert.id == "cpu_high" for alert in agent.active_alerts()):
            raised_after_s = second
            break
    assert raised_after_s is not None and 10 <= raised_after_s <= 12

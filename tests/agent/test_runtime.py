"""The runtime: independent sources, staleness with the reason, snapshots, rules, records to sinks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import ClassVar

from agent.errors import SourceUnavailable
from agent.history import History
from agent.models import Alert, AlertChange, HealthSnapshot, Sample, utc_now
from agent.runtime import Agent
from agent.sources.base import PollingSource, SampleSink, Source
from tests.agent.helpers import make_settings, system_sample
from tests.peers.wait import async_wait_until


class CounterSample(Sample):
    SOURCE: ClassVar[str] = "counter"
    value: float


class CountingSource(PollingSource):
    """A source that answers at once with an increasing value."""

    name = "counter"

    def __init__(self) -> None:
        super().__init__(interval_s=0.05, timeout_s=0.5)
        self.value = 0.0

    async def sample(self) -> Sample:
        self.value += 1
        return CounterSample(value=self.value)


class HangingSource(PollingSource):
    """A source whose peer never answers: each reading times out."""

    name = "hanging"

    def __init__(self) -> None:
        super().__init__(interval_s=0.05, timeout_s=0.1)

    async def sample(self) -> Sample:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class RefusedSource(PollingSource):
    name = "refused"
    max_backoff_s = 0.2

    def __init__(self) -> None:
        super().__init__(interval_s=0.05, timeout_s=0.5)
        self.attempts = 0

    async def sample(self) -> Sample:
        self.attempts += 1
        raise SourceUnavailable("OBS is not running on 127.0.0.1:4455: start OBS or check sources.obs.url")


class CrashingSource(Source):
    name = "crashing"

    def __init__(self) -> None:
        super().__init__(interval_s=0.05, timeout_s=0.5)
        self.runs = 0

    async def run(self, sink: SampleSink) -> None:
        self.runs += 1
        raise RuntimeError("bug")


async def test_a_hanging_source_does_not_block_the_others(tmp_path: Path) -> None:
    counting, hanging = CountingSource(), HangingSource()
    agent = Agent(make_settings(tmp_path, SAMPLING__INTERVAL_S="0.1"), [counting, hanging])
    await agent.start()
    try:
        await async_wait_until(lambda: counting.value >= 10, 5, "the counting source to keep sampling")
        await async_wait_until(
            lambda: agent.snapshot.sources["hanging"].state == "error", 5, "the hanging source to be marked"
        )
        status = agent.snapshot.sources["hanging"]
        assert status.error is not None and "no reading within 0.1 s" in status.error
        assert agent.snapshot.sources["counter"].state == "ok"
    finally:
        await agent.stop()


async def test_an_unavailable_source_reports_why_and_backs_off(tmp_path: Path) -> None:
    refused = RefusedSource()
    agent = Agent(make_settings(tmp_path, SAMPLING__INTERVAL_S="0.1"), [refused])
    await agent.start()
    try:
        await asyncio.sleep(1.0)
        status = agent.snapshot.sources["refused"]
        assert status.state == "error"
        assert status.error is not None and "start OBS" in status.error
        # Backoff 0.05, 0.1, 0.2, 0.2, ...: about 6 attempts in a second instead of 20.
        assert 3 <= refused.attempts <= 9
    finally:
        await agent.stop()


async def test_a_crashing_source_is_restarted_and_reported(tmp_path: Path) -> None:
    crashing = CrashingSource()
    agent = Agent(make_settings(tmp_path, SAMPLING__INTERVAL_S="0.1"), [crashing])
    await agent.start()
    try:
        await async_wait_until(lambda: crashing.runs >= 2, 5, "a restart")
        await async_wait_until(lambda: agent.snapshot.sources["crashing"].state == "error", 5, "error state")
        assert "RuntimeError: bug" in (agent.snapshot.sources["crashing"].error or "")
    finally:
        await agent.stop()


async def test_a_source_that_stops_answering_goes_stale_with_its_age(tmp_path: Path) -> None:
    clock = [1000.0]
    agent = Agent(make_settings(tmp_path), [], clock=lambda: clock[0])
    agent.publish("system", system_sample())
    agent.tick()
    assert agent.snapshot.sources["system"].state == "ok"
    clock[0] += 10.0
    agent.report_failure("system", "psutil failed")
    snapshot = agent.tick()
    assert snapshot.sources["system"].state == "stale"
    assert snapshot.sources["system"].age_s == 10.0
    assert snapshot.sources["system"].error == "psutil failed"
    assert snapshot.system is not None  # the last value is kept, marked stale


async def test_samples_go_into_history_and_the_snapshot(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path), [])
    sample = system_sample(cpu=0.25)
    agent.publish("system", sample)
    snapshot = agent.tick()
    assert snapshot.system == sample
    series = agent.history.series("system.cpu_usage_ratio")
    assert series is not None and series.latest() == (sample.taken_at.timestamp(), 0.25)
    assert agent.history.series("system.memory_total_bytes") is None  # facts are not time series


class ThresholdRules:
    """A minimal evaluator: raise when CPU > 0.9, clear when it falls below."""

    def __init__(self) -> None:
        self.alert: Alert | None = None

    def evaluate(
        self, snapshot: HealthSnapshot, history: History, monotonic_s: float | None = None
    ) -> list[AlertChange]:
        cpu = snapshot.system.cpu_usage_ratio if snapshot.system else 0.0
        if cpu > 0.9 and self.alert is None:
            self.alert = Alert(id="cpu", kind="cpu", severity="critical", message=f"CPU {cpu:.0%}", since=utc_now())
            return [AlertChange(change="raised", alert=self.alert)]
        if cpu <= 0.9 and self.alert is not None:
            cleared = self.alert.model_copy(update={"cleared_at": utc_now()})
            self.alert = None
            return [AlertChange(change="cleared", alert=cleared)]
        return []

    def active_alerts(self) -> list[Alert]:
        return [self.alert] if self.alert else []


async def test_rules_drive_alerts_overall_state_and_records(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path), [], rules=ThresholdRules())
    lines: list[str] = []
    agent.sinks.append(type("ListSink", (), {"write_line": lambda self, line: lines.append(line)})())
    agent.publish("system", system_sample(cpu=0.95))
    snapshot = agent.tick()
    assert snapshot.overall == "critical"
    assert [a.id for a in snapshot.alerts] == ["cpu"]
    agent.publish("system", system_sample(cpu=0.2))
    snapshot = agent.tick()
    assert snapshot.overall == "ok"
    assert [a.id for a in agent.recently_cleared_alerts()] == ["cpu"]
    changes = [json.loads(line)["change"]["change"] for line in lines if json.loads(line)["type"] == "alert"]
    assert changes == ["raised", "cleared"]


async def test_stopping_twice_writes_one_last_record(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path), [CountingSource()])
    await agent.start()
    await agent.stop("first")
    await agent.stop("second")
    assert agent.log_writer is not None
    lines = agent.log_writer.path.read_text().splitlines()
    assert [json.loads(line)["reason"] for line in lines if '"run_stopped"' in line] == ["first"]

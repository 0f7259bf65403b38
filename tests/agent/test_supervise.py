"""The task supervisor: a task that ends unexpectedly is logged with its traceback, alerted and restarted;
a cancelled one is not; the alert clears once the restarted task has run long enough."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from agent.backoff import Backoff
from agent.runtime import Agent
from agent.sources.base import SampleSink, Source
from agent.supervise import Supervisor
from tests.agent.helpers import make_settings
from tests.agent.relay.helpers import until
from tests.peers.wait import async_wait_until

QUICK = Backoff(0.01, 0.05, jitter_ratio=0.0)


async def test_a_task_that_raises_is_logged_alerted_and_started_again(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(healthy_after_s=60)
    starts: list[int] = []
    repaired: list[str] = []

    async def work() -> None:
        starts.append(len(starts))
        if len(starts) == 1:
            raise ValueError("negative file descriptor")
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR, logger="agent.supervise"):
        supervisor.spawn("relay-destination:a:1935", work, what="the relay stopped forwarding to a:1935",
                         severity="critical", backoff=QUICK, on_end=repaired.append)  # fmt: skip
        await until(lambda: len(starts) == 2, 5, "the restart")
    try:
        assert repaired == ["ValueError: negative file descriptor"]
        assert "Traceback" in caplog.text and "raise ValueError" in caplog.text
        [alert] = supervisor.active_alerts()
        assert alert.severity == "critical" and alert.kind == "task_ended"
        assert alert.message.startswith("The relay stopped forwarding to a:1935 at ")
        assert "ValueError: negative file descriptor" in alert.message
        [change] = supervisor.take_changes()
        assert change.change == "raised" and change.alert.id == "task_ended:relay-destination:a:1935"
        assert supervisor.take_changes() == []  # each change once
        ending = supervisor.ending_of("relay-destination:a:1935")
        assert ending is not None and ending.restarts == 1 and ending.restarted_at_s is not None
    finally:
        await supervisor.close()


async def test_a_task_that_returns_is_started_again_with_a_growing_backoff() -> None:
    supervisor = Supervisor(healthy_after_s=60)
    starts = 0

    async def work() -> None:
        nonlocal starts
        starts += 1

    supervisor.spawn("shipper", work, backoff=Backoff(0.01, 1.0, jitter_ratio=0.0))
    try:
        await until(lambda: starts >= 4, 5, "three restarts")
        ending = supervisor.ending_of("shipper")
        assert ending is not None and ending.reason == "it returned"
        assert ending.restart_in_s >= 0.04  # 0.01, 0.02, 0.04, ...: it grows while the task keeps ending
        changes = supervisor.take_changes()
        assert [c.change for c in changes][:2] == ["raised", "updated"]  # one alert, updated, not raised again
        assert "ended 3 times" in changes[-1].alert.message or "ended 4 times" in changes[-1].alert.message
    finally:
        await supervisor.close()


async def test_cancelling_is_not_an_ending() -> None:
    supervisor = Supervisor()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    task = supervisor.spawn("notify", work, backoff=QUICK)
    await started.wait()
    await supervisor.close()
    assert task.cancelled()
    assert supervisor.active_alerts() == [] and supervisor.take_changes() == []
    assert supervisor.endings_total == 0


async def test_the_alert_clears_once_the_restarted_task_has_run_long_enough() -> None:
    supervisor = Supervisor(healthy_after_s=0.2)
    starts = 0

    async def work() -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    supervisor.spawn("source:system", work, backoff=QUICK)
    try:
        await until(lambda: starts == 2, 5, "the restart")
        await until(lambda: not supervisor.active_alerts(), 5, "the alert to clear")
        changes = supervisor.take_changes()
        assert [c.change for c in changes] == ["raised", "cleared"]
        assert changes[1].alert.cleared_at is not None
    finally:
        await supervisor.close()


async def test_an_adopted_supervisors_alerts_are_reported_by_its_parent() -> None:
    parent, child = Supervisor(), Supervisor()
    parent.adopt(child)
    parent.adopt(child)  # once only
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()
        raise OSError("gone")

    child.spawn("relay-destination:b:1935", work, backoff=Backoff(10.0, 10.0))
    try:
        await ran.wait()
        await until(lambda: bool(parent.active_alerts()), 5, "the child's alert")
        assert [c.alert.id for c in parent.take_changes()] == ["task_ended:relay-destination:b:1935"]
        assert child.take_changes() == []  # taken once, through the parent
    finally:
        await child.close()


async def test_a_failing_repair_does_not_stop_the_restart(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()
    starts = 0

    async def work() -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            raise RuntimeError("first")
        await asyncio.Event().wait()

    def repair(reason: str) -> None:
        raise KeyError(reason)

    supervisor.spawn("source:obs", work, backoff=QUICK, on_end=repair)
    try:
        await until(lambda: starts == 2, 5, "the restart despite the failed repair")
        assert "its repair before the restart failed" in caplog.text
    finally:
        await supervisor.close()


# --- in the agent: sources, and the relay's supervisor adopted ------------------------------------------


class _CrashingSource(Source):
    name = "crashing"

    def __init__(self) -> None:
        super().__init__(interval_s=0.05, timeout_s=0.5)
        self.runs = 0
        self.supervisor = Supervisor(healthy_after_s=60)  # as the relay source exposes its relay's

    async def run(self, sink: SampleSink) -> None:
        self.runs += 1
        if self.runs == 1:
            self.supervisor.spawn("relay-destination:x:1935", self._forward, what="the relay stopped forwarding "
                                  "to x:1935", severity="critical", backoff=Backoff(60.0, 60.0))  # fmt: skip
        await asyncio.sleep(0.05)
        raise RuntimeError("bug in a source")

    async def _forward(self) -> None:
        raise ValueError("negative file descriptor")


async def test_the_agent_alerts_on_a_crashed_source_and_on_an_adopted_supervisors_task(tmp_path: Path) -> None:
    source = _CrashingSource()
    agent = Agent(make_settings(tmp_path, SAMPLING__INTERVAL_S="0.1"), [source])
    lines: list[str] = []
    agent.sinks.append(_ListSink(lines))
    await agent.start()
    try:
        await async_wait_until(lambda: len(agent.snapshot.alerts) == 2, 10, "both alerts in the snapshot")
        alerts = {alert.id: alert for alert in agent.snapshot.alerts}
        relay = alerts["task_ended:relay-destination:x:1935"]
        assert relay.severity == "critical" and "The relay stopped forwarding to x:1935" in relay.message
        assert agent.snapshot.alerts[0].id == relay.id  # the critical one first
        assert "RuntimeError: bug in a source" in alerts["task_ended:source:crashing"].message
        assert agent.snapshot.overall == "critical"
        await async_wait_until(lambda: source.runs >= 2, 10, "the source started again")
        assert "RuntimeError: bug in a source" in (agent.snapshot.sources["crashing"].error or "")
        raised = [json.loads(line) for line in lines if '"change":"raised"' in line]
        assert {record["change"]["alert"]["id"] for record in raised} == set(alerts)
    finally:
        await agent.stop()
        await source.supervisor.close()


class _ListSink:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write_line(self, line: str) -> None:
        self.lines.append(line)

"""The beat: periodic loops wake together, so an idle agent wakes its event loop about once a second."""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from pathlib import Path

import pytest

from agent.beat import after_peers, next_beat, sleep_at_least, sleep_until_next_beat
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.peers.wait import async_wait_until


def test_the_next_beat_is_the_first_multiple_strictly_after_now() -> None:
    assert next_beat(10.0, 1.0) == 11.0
    assert next_beat(10.2, 1.0) == 11.0
    assert next_beat(10.2, 0.25) == 10.25
    assert next_beat(10.99, 2.0) == 12.0
    assert next_beat(0.0, 5.0) == 5.0


async def test_a_backoff_is_never_shortened_and_ends_on_a_beat() -> None:
    started = time.monotonic()
    await sleep_at_least(0.3, beat_s=0.25)
    woke = time.monotonic()
    beat = math.ceil((started + 0.3) / 0.25) * 0.25
    assert woke >= beat - 0.002  # never before the first beat after the backoff (the loop rounds to 1 ms)


async def test_loops_with_different_intervals_wake_in_the_same_pass_of_the_event_loop() -> None:
    """A 4 Hz loop and a 1 Hz loop: every 1 Hz wake-up shares its pass with a 4 Hz one."""
    loop = asyncio.get_running_loop()
    passes = 0
    real_select = loop._selector.select  # type: ignore[attr-defined]

    def counting_select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        nonlocal passes
        passes += 1
        return real_select(timeout)  # type: ignore[no-any-return]

    loop._selector.select = counting_select  # type: ignore[attr-defined]
    fast: list[int] = []
    slow: list[int] = []

    async def every(interval_s: float, passes_seen: list[int]) -> None:
        while True:
            await sleep_until_next_beat(interval_s)
            passes_seen.append(passes)

    tasks = [asyncio.create_task(every(0.25, fast)), asyncio.create_task(every(1.0, slow))]
    try:
        await async_wait_until(lambda: len(slow) >= 3, 10, "three 1 Hz wake-ups")
    finally:
        for task in tasks:
            task.cancel()
        loop._selector.select = real_select  # type: ignore[attr-defined]
    # The same wake-up resumes both tasks; each records the pass it woke in.
    assert set(slow) <= set(fast), (slow, fast)


async def test_after_peers_lets_loops_woken_on_the_same_beat_publish_first() -> None:
    order: list[str] = []

    async def source() -> None:
        await sleep_until_next_beat(0.2)
        order.append("source")

    async def tick() -> None:
        await sleep_until_next_beat(0.2)
        await after_peers()
        order.append("tick")

    await asyncio.gather(tick(), source())
    assert order == ["source", "tick"]


@pytest.mark.integration
async def test_an_idle_agent_wakes_its_event_loop_about_once_a_second(tmp_path: Path) -> None:
    """All default sources and the API: the tick, the sources and the server share one wake-up a second
    (before the beat, each loop woke on its own: four to ten wake-ups a second)."""
    server = AgentServer(make_settings(tmp_path, STREAMHEALTH_API__PORT="0"))
    await server.start()
    loop = asyncio.get_running_loop()
    real_select = loop._selector.select  # type: ignore[attr-defined]
    waits: list[float | None] = []

    def counting_select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            waits.append(timeout)  # a pass that could block: a wake-up (a pass with ready work does not wait)
        return real_select(timeout)  # type: ignore[no-any-return]

    try:
        await asyncio.sleep(2.0)  # start-up's one-off work (first scans, the OBS attempt) settles
        loop._selector.select = counting_select  # type: ignore[attr-defined]
        await asyncio.sleep(5.0)
    finally:
        loop._selector.select = real_select  # type: ignore[attr-defined]
        await server.stop()
    # About 1 a second, plus the odd worker-thread result and OBS retry: well under the 4+ of old.
    assert len(waits) <= 5 * 2, f"{len(waits)} wake-ups in 5 s"

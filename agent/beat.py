"""One beat for every periodic loop in the agent, so that it wakes up once per second, not once per loop.

Each loop (the tick, each source, the API server's housekeeping) used to sleep "interval after I last
ran", so a dozen 1 Hz loops woke the process a dozen times a second, each at its own moment. A wake-up
costs more than the little work most loops do: on this 2-core machine, ten 1 Hz timers cost 0.116 CPU s
per minute when staggered and 0.018 when they fire together (bench/agent_footprint.py has the figures);
on a laptop every wake-up also keeps the CPU from its deep idle states, which costs battery.

So every loop sleeps until the next multiple of its interval on the monotonic clock (`next_beat`): loops
with intervals of 0.25, 0.5, 1, 2, 5 or 10 s all wake on the whole seconds, together, and the event
loop serves all of them in one wake-up. The tick waits for the sources woken on the same beat to publish
first (`after_peers`), so it judges the freshest readings.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

# Task steps resumed by the same wake-up run one event-loop pass after their timers fire; a sample
# published synchronously by such a step is in by the second pass.
PEER_PASSES = 2


def next_beat(now_s: float, interval_s: float) -> float:
    """The first multiple of `interval_s` strictly after `now_s` (both on the same monotonic clock)."""
    return (math.floor(now_s / interval_s) + 1) * interval_s


async def sleep_until_next_beat(interval_s: float, clock: Callable[[], float] = time.monotonic) -> float:
    """Sleep until the next beat of `interval_s`; returns that beat's time on `clock`."""
    beat = next_beat(clock(), interval_s)
    await asyncio.sleep(max(0.0, beat - clock()))
    return beat


async def sleep_at_least(delay_s: float, beat_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
    """Sleep `delay_s` (a retry's backoff), then on to the next beat of `beat_s`: late by less than a beat,
    never early, and waking with the others."""
    now = clock()
    wake_at = math.ceil((now + delay_s) / beat_s) * beat_s
    await asyncio.sleep(max(0.0, wake_at - now))


async def after_peers() -> None:
    """Let the other loops woken by this same beat run their step before the caller goes on."""
    for _ in range(PEER_PASSES):
        await asyncio.sleep(0)

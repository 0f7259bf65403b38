"""A polling source always stops when cancelled, even when the cancel lands as a reading completes
(Python 3.11's asyncio.wait_for swallowed such a cancel, and the agent then hung on stop)."""

from __future__ import annotations

import asyncio

from agent.models import Sample
from agent.sources.base import PollingSource


class _Instant(PollingSource):
    name = "instant"

    async def sample(self) -> Sample:
        await asyncio.sleep(0)  # completes on the next loop turn: the race window
        return Sample()


class _Sink:
    def publish(self, source: str, sample: Sample) -> None:
        pass

    def report_failure(self, source: str, message: str) -> None:
        pass


async def test_polling_source_stops_on_the_first_cancel_whenever_it_lands() -> None:
    source = _Instant(interval_s=0.0001, timeout_s=1.0)
    for turns in range(300):
        task = asyncio.create_task(source.run(_Sink()))
        for _ in range(turns % 7):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        assert task in done, f"the source ignored a cancel (after {turns % 7} loop turns)"

"""What a source is: a small class with an async `run()` that publishes samples to a sink.

Pull sources (CPU, TCP probes) subclass `PollingSource` and implement `sample()`; push sources
(OBS events, ffmpeg progress, the relay) subclass `Source` and publish when data arrives.
A source never raises out of `run()` for a measurement failure: it reports it, backs off, and goes on,
so one slow or failing source never blocks or kills the others.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import ClassVar, Protocol

from agent.backoff import Backoff
from agent.beat import sleep_at_least, sleep_until_next_beat
from agent.errors import StreamHealthError
from agent.models import Sample
from agent.redact import redact

log = logging.getLogger(__name__)


class SampleSink(Protocol):
    """Where sources deliver: the runtime. Both calls are synchronous and never block."""

    def publish(self, source: str, sample: Sample) -> None: ...

    def report_failure(self, source: str, message: str) -> None: ...


class Source(abc.ABC):
    name: ClassVar[str]
    # True for a source that only reports while its peer pushes data (ffmpeg's progress): the agent's
    # start-up ("starting" until every source has reported) does not wait for it.
    waits_for_peer: ClassVar[bool] = False

    def __init__(self, *, interval_s: float, timeout_s: float) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    @property
    def stale_after_s(self) -> float:
        """A sample older than this is stale: a few missed intervals, or a timed-out attempt."""
        return max(3 * self.interval_s, self.interval_s + self.timeout_s)

    @abc.abstractmethod
    async def run(self, sink: SampleSink) -> None:
        """Measure until cancelled."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the source holds (connections, subprocesses). Called once at shutdown."""


class PollingSource(Source):
    """A source that takes one reading per interval, each within a timeout, backing off on failure."""

    max_backoff_s: float = 30.0

    @abc.abstractmethod
    async def sample(self) -> Sample:
        """Take one reading. Raise `StreamHealthError` with a user-facing reason when it cannot."""

    async def run(self, sink: SampleSink) -> None:
        backoff = Backoff(self.interval_s, max(self.interval_s, self.max_backoff_s))
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives as its timeout fires, and the agent would then never stop this task.
                async with asyncio.timeout(self.timeout_s):
                    reading = await self.sample()
            except TimeoutError:
                sink.report_failure(self.name, f"no reading within {self.timeout_s:g} s")
            except StreamHealthError as exc:
                sink.report_failure(self.name, redact(str(exc)))
            except Exception as exc:  # a bug or an unexpected OS error: report it, keep measuring
                log.exception("source %s failed unexpectedly", self.name)
                sink.report_failure(self.name, redact(f"unexpected error: {type(exc).__name__}: {exc}"))
            else:
                backoff.reset()
                sink.publish(self.name, reading)
                await sleep_until_next_beat(self.interval_s)  # with the tick and the other sources
                continue
            await sleep_at_least(backoff.next_s(), self.interval_s)

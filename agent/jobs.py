"""Long work on demand (bandwidth tests, preflight): one job of a kind at a time, with progress.

A job is an async function that takes a `ProgressReporter` and returns a report model. Progress goes
to the event stream as it happens; the report (or the reason it failed) is emitted once at the end,
written to the health log, and kept as the kind's last result. Every job has a deadline and can be
cancelled. The CLI runs the same job functions with a terminal reporter instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from agent.errors import StreamHealthError
from agent.models import JobFinished, Progress, utc_now
from agent.redact import redact

log = logging.getLogger(__name__)


class ProgressReporter(Protocol):
    def report(self, step: str, fraction: float | None = None, message: str = "") -> None: ...


JobWork = Callable[[ProgressReporter], Awaitable[BaseModel]]


class JobBusy(StreamHealthError):
    """A job of that kind is already running."""


class Emitter(Protocol):
    def emit(self, record: BaseModel, event_type: str | None = None) -> None: ...


@dataclass
class _EventReporter:
    emitter: Emitter
    job: str
    job_id: str

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        fraction = None if fraction is None else min(1.0, max(0.0, fraction))
        progress = Progress(job=self.job, job_id=self.job_id, step=step, fraction=fraction, message=message)
        self.emitter.emit(progress)


@dataclass
class JobState:
    job_id: str
    task: asyncio.Task[None]
    finished: JobFinished | None = None


class Jobs:
    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self._running: dict[str, JobState] = {}
        self._last: dict[str, JobFinished] = {}
        self._last_successful: dict[str, JobFinished] = {}

    def start(self, job: str, work: JobWork, *, deadline_s: float) -> str:
        current = self._running.get(job)
        if current is not None and not current.task.done():
            raise JobBusy(f"a {job} job is already running (id {current.job_id}); wait for it or cancel it")
        job_id = uuid.uuid4().hex[:12]
        reporter = _EventReporter(self.emitter, job, job_id)
        task = asyncio.create_task(self._run(job, job_id, work, reporter, deadline_s), name=f"job:{job}")
        self._running[job] = JobState(job_id, task)
        return job_id

    async def _run(self, job: str, job_id: str, work: JobWork, reporter: _EventReporter, deadline_s: float) -> None:
        error: str | None = None
        report: BaseModel | None = None
        reporter.report("starting", 0.0)
        try:
            report = await asyncio.wait_for(work(reporter), deadline_s)
        except TimeoutError:
            error = f"did not finish within its deadline of {deadline_s:g} s"
        except asyncio.CancelledError:
            error = "cancelled"
        except StreamHealthError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("%s job failed", job)
            error = f"unexpected error: {type(exc).__name__}: {exc}"
        finished = JobFinished(
            at=utc_now(),
            job=job,
            job_id=job_id,
            ok=error is None,
            error=redact(error) if error else None,
            report=report.model_dump(mode="json") if report is not None else None,
        )
        self._last[job] = finished
        if finished.ok and finished.report is not None and finished.report.get("ok", True) is not False:
            self._last_successful[job] = finished
        state = self._running.get(job)
        if state is not None and state.job_id == job_id:
            state.finished = finished
        self.emitter.emit(finished)

    def running(self, job: str) -> str | None:
        state = self._running.get(job)
        return state.job_id if state is not None and not state.task.done() else None

    def last(self, job: str) -> JobFinished | None:
        return self._last.get(job)

    def last_successful(self, job: str) -> JobFinished | None:
        """The last run of `job` that finished with a report whose own `ok` (if it has one) is not False."""
        return self._last_successful.get(job)

    async def cancel(self, job: str) -> bool:
        state = self._running.get(job)
        if state is None or state.task.done():
            return False
        state.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.task
        return True

    async def wait(self, job: str) -> JobFinished | None:
        state = self._running.get(job)
        if state is not None:
            await asyncio.shield(state.task)
        return self._last.get(job)

"""Keeps the agent's long-lived tasks alive: a task that ends unexpectedly is logged, alerted and restarted.

The relay's destinations, the sources, the shipper and the notifier each run as one task for the agent's
whole life; none of them should ever end while the agent runs. If one does (a bug: an exception nobody
expected, or a `return`), the supervisor logs it with its traceback, raises an alert that says what stopped
(the relay's: "the relay stopped forwarding to <host>"), and starts it again after a backoff (agent/backoff.py)
that resets once the task has run `healthy_after_s`. The alert clears when the restarted task has run that
long. Cancellation is not an ending: `close()` (or the task's owner) cancels, and nothing restarts.
Not for retrying work that is expected to fail (a connection, a request): those retry in their own loops.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from agent.backoff import Backoff
from agent.models import Alert, AlertChange, Severity, Suggestion, utc_now
from agent.redact import redact

log = logging.getLogger(__name__)

HEALTHY_AFTER_S: Final = 30.0  # a restarted task that has run this long is well again (alert cleared, backoff reset)

Work = Callable[[], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class TaskEnding:
    """The last unexpected end of a supervised task: what its alert says."""

    reason: str  # "ValueError: negative file descriptor", or "it returned"
    at: datetime
    at_s: float  # monotonic
    restarts: int  # how many times the task has been started again so far
    restart_in_s: float
    restarted_at_s: float | None = None


@dataclass(slots=True)
class _Supervised:
    name: str
    work: Work
    what: str  # "the relay stopped forwarding to a:1935"
    severity: Severity
    backoff: Backoff
    on_end: Callable[[str], None] | None
    task: asyncio.Task[None] | None = None
    ending: TaskEnding | None = None
    alert: Alert | None = None
    restarts: int = 0
    pending: list[AlertChange] = field(default_factory=list)


class Supervisor:
    """Runs tasks that must not end (`spawn`), and holds the alerts about the ones that did (`active_alerts`,
    `take_changes`). A supervisor may adopt others (the relay's), so the runtime reads one."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, healthy_after_s: float = HEALTHY_AFTER_S
    ) -> None:
        self._clock = clock
        self.healthy_after_s = healthy_after_s
        self._supervised: dict[str, _Supervised] = {}
        self._children: list[Supervisor] = []
        self.endings_total = 0  # unexpected ends over the agent's life, every task together

    def spawn(
        self,
        name: str,
        work: Work,
        *,
        what: str | None = None,
        severity: Severity = "warning",
        backoff: Backoff | None = None,
        on_end: Callable[[str], None] | None = None,
    ) -> asyncio.Task[None]:
        """Start `work()` as the task `name`, and again whenever it ends unexpectedly. `what` is the alert's
        sentence ("the relay stopped forwarding to a:1935"); `on_end(reason)` runs before each restart (the
        owner's repair: a destination keeps its queue, a source reports the failure)."""
        supervised = _Supervised(
            name=name,
            work=work,
            what=what or f"the task {name} stopped",
            severity=severity,
            backoff=backoff or Backoff(1.0, 30.0),
            on_end=on_end,
        )
        self._supervised[name] = supervised
        task = asyncio.create_task(self._keep_running(supervised), name=name)
        supervised.task = task
        return task

    def adopt(self, child: Supervisor) -> None:
        """Report `child`'s alerts as this one's (the runtime adopts the relay's supervisor)."""
        if child is not self and child not in self._children:
            self._children.append(child)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [s.task for s in self._supervised.values() if s.task is not None]

    async def close(self, timeout_s: float = 5.0) -> None:
        """Cancel every task this supervisor runs (not its children's) and wait for them, bounded."""
        tasks = self.tasks
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
            for task in stuck:
                log.error("task %s did not stop within %g s; abandoning it", task.get_name(), timeout_s)

    # --- the alerts ----------------------------------------------------------------------------------

    def active_alerts(self) -> list[Alert]:
        self._clear_recovered()
        alerts = [s.alert for s in self._supervised.values() if s.alert is not None]
        for child in self._children:
            alerts.extend(child.active_alerts())
        return alerts

    def take_changes(self) -> list[AlertChange]:
        """The alerts raised and cleared since the last call (the runtime emits them once each)."""
        self._clear_recovered()
        changes: list[AlertChange] = []
        for supervised in self._supervised.values():
            changes.extend(supervised.pending)
            supervised.pending.clear()
        for child in self._children:
            changes.extend(child.take_changes())
        return changes

    def ending_of(self, name: str) -> TaskEnding | None:
        supervised = self._supervised.get(name)
        return None if supervised is None else supervised.ending

    def _clear_recovered(self) -> None:
        now = self._clock()
        for supervised in self._supervised.values():
            ending, alert = supervised.ending, supervised.alert
            if alert is None or ending is None or ending.restarted_at_s is None:
                continue
            if now - ending.restarted_at_s >= self.healthy_after_s:
                cleared = alert.model_copy(update={"cleared_at": utc_now(), "updated_at": utc_now()})
                supervised.alert = None
                supervised.pending.append(AlertChange(change="cleared", alert=cleared))
                log.info("task %s has run %g s since its restart: well again", supervised.name, self.healthy_after_s)

    # --- the loop ------------------------------------------------------------------------------------

    async def _keep_running(self, supervised: _Supervised) -> None:
        while True:
            started_s = self._clock()
            try:
                await supervised.work()
                reason = "it returned"
                log.error("task %s ended (it returned); restarting it", supervised.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = redact(f"{type(exc).__name__}: {exc}")
                # With its traceback: this is a bug, and the traceback is what fixes it.
                log.error(
                    "task %s ended: %s; restarting it\n%s",
                    supervised.name,
                    reason,
                    redact("".join(traceback.format_exception(exc))),
                )
            if self._clock() - started_s >= self.healthy_after_s:
                supervised.backoff.reset()  # it had been well: this is a first failure again
            delay_s = supervised.backoff.next_s()
            self._ended(supervised, reason, delay_s)
            if supervised.on_end is not None:
                try:
                    supervised.on_end(reason)
                except Exception:
                    log.exception("task %s: its repair before the restart failed", supervised.name)
            await asyncio.sleep(delay_s)
            supervised.restarts += 1
            if supervised.ending is not None:
                supervised.ending.restarted_at_s = self._clock()
                supervised.ending.restarts = supervised.restarts
            log.warning("task %s: started again (restart %d)", supervised.name, supervised.restarts)

    def _ended(self, supervised: _Supervised, reason: str, delay_s: float) -> None:
        self.endings_total += 1
        now = utc_now()
        ending = TaskEnding(reason, now, self._clock(), supervised.restarts, delay_s)
        supervised.ending = ending
        previous = supervised.alert
        times = f" (ended {supervised.restarts + 1} times)" if supervised.restarts else ""
        alert = Alert(
            id=f"task_ended:{supervised.name}",
            kind="task_ended",
            severity=supervised.severity,
            message=(
                f"{supervised.what[:1].upper()}{supervised.what[1:]} at {now:%H:%M:%S} UTC: {reason}{times}; "
                f"the agent restarts it in {delay_s:.1f} s. This is a bug in streamhealth: the log has its traceback."
            ),
            since=previous.since if previous is not None else now,
            updated_at=now,
            value=float(supervised.restarts + 1),
            suggestions=[
                Suggestion(
                    text="Report it with the agent's log (the traceback after 'task ... ended')",
                    why="no task of the agent should ever end while it runs",
                    automatic=False,
                ),
                Suggestion(text=f"Restarting {supervised.name}", why="a restart repairs it", automatic=True),
            ],
        )
        supervised.alert = alert
        supervised.pending.append(AlertChange(change="raised" if previous is None else "updated", alert=alert))

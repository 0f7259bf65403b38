"""The agent: owns the sources, the history, the rules and the sinks, and ticks once per interval.

Sources publish samples whenever they have them; the tick (default 1 Hz) turns the latest samples
into a `HealthSnapshot`, marks stale sources, runs the rules, and emits records to the sinks
(event stream, and through agent/outputs.py the health log, the shipper and the notifier). No API request ever triggers a measurement:
requests read what the last tick produced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel

from agent import __version__, os_features
from agent.backoff import Backoff
from agent.beat import after_peers, sleep_until_next_beat
from agent.events import EventBus
from agent.history import History
from agent.incidents import IncidentLog
from agent.jobs import Jobs
from agent.models import (
    AgentInfo,
    Alert,
    AlertChange,
    AlertRecord,
    BandwidthResult,
    HealthSnapshot,
    RelaySample,
    RunStarted,
    RunStopped,
    Sample,
    SourceStateName,
    SourceStateRecord,
    SourceStatus,
    TickRecord,
    overall_state,
    utc_now,
)
from agent.models.capacity import CapacityEstimate
from agent.net.capacity import CapacityTracker
from agent.outputs import Outputs
from agent.redact import redact, redact_url
from agent.relay.alerts import switch_alert
from agent.rules import RuleEvaluator
from agent.sessions.recorder import SessionRecorder
from agent.settings import Settings
from agent.sources import Source, build_sources
from agent.supervise import Supervisor

if TYPE_CHECKING:
    from agent.logs.writer import HealthLogWriter
    from agent.notify.notifier import Notifier
    from agent.ship.sequence import Sequencer
    from agent.ship.shipper import Shipper

log = logging.getLogger(__name__)

RECENTLY_CLEARED_KEPT = 100
STOP_TIMEOUT_S = 5.0
_SEVERITY_ORDER = {"critical": 0, "warning": 1}
# What stops when one of the outputs' tasks ends (agent/outputs.py): the supervisor's alert.
_OUTPUT_TASKS = {"shipper": "the shipper stopped sending records to the collector",
                 "notify": "the notifier stopped sending notifications"}  # fmt: skip


def _default_rules(settings: Settings) -> RuleEvaluator:
    """The rule engine built from the settings (shipped rules + the user's); already validated at load."""
    from agent.rules.engine import RuleEngine

    return RuleEngine.from_settings(settings)


@dataclass
class _SourceHealth:
    name: str
    stale_after_s: float
    state: SourceStateName = "starting"
    last_sample_at: datetime | None = None
    last_sample_monotonic: float | None = None
    error: str | None = None
    consecutive_failures: int = 0


def _sample_fields() -> dict[str, tuple[type[Sample], ...]]:
    """The snapshot's sample fields and the sample class each holds ("system": SystemSample, ...)."""
    found: dict[str, tuple[type[Sample], ...]] = {}
    for name, field in HealthSnapshot.model_fields.items():
        kinds = tuple(k for k in get_args(field.annotation) if isinstance(k, type) and issubclass(k, Sample))
        if kinds:
            found[name] = kinds
    return found


# The snapshot is constructed, not validated (its parts are validated models already): only a sample of
# the class its field declares goes in.
_SNAPSHOT_SAMPLES = _sample_fields()


def _changed(previous: Sample, sample: Sample, fields: tuple[str, ...]) -> bool:
    return any(getattr(previous, name, None) != getattr(sample, name, None) for name in fields)


class Agent:
    def __init__(
        self,
        settings: Settings,
        sources: list[Source] | None = None,
        *,
        rules: RuleEvaluator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sources = [*build_sources(settings), *_relay_sources(settings)] if sources is None else sources
        self.rules = rules if rules is not None else _default_rules(settings)
        self.clock = clock
        self.bus = EventBus()
        self.jobs = Jobs(self)
        self._bandwidth_cache: tuple[str, BandwidthResult] | None = None
        self.history = History(capacity=max(1, int(settings.sampling.history_s / settings.sampling.interval_s)))
        self.started_at = utc_now()
        self.started_monotonic = clock()  # durations come from the monotonic clock; wall time only labels
        self.pid = os.getpid()
        self.outputs = Outputs(settings)
        self.sinks = self.outputs.sinks  # the same list: tests and embedders may add their own sink
        self.api_url: str | None = None  # set by whoever serves the API, once it listens
        self._latest: dict[str, Sample] = {}
        self._health = {s.name: _SourceHealth(s.name, s.stale_after_s) for s in self.sources}
        self._recently_cleared: deque[Alert] = deque(maxlen=RECENTLY_CLEARED_KEPT)
        self.incidents = IncidentLog()  # what happened, for the technician's timeline (snapshot and API)
        # Start-up: "starting" until every source that measures on its own has reported (a sample or a
        # failure), or until the slowest of them should have (its stale_after_s after start()).
        self._awaited_sources = {s.name for s in self.sources if not s.waits_for_peer}
        self._startup_deadline: float | None = None
        self._measured = not self._awaited_sources
        self._tasks: list[asyncio.Task[None]] = []
        # The long-lived tasks (sources, shipper, notifier; the relay's destinations through its own, adopted):
        # one that ends unexpectedly is logged, alerted and restarted (agent/supervise.py).
        self.supervisor = Supervisor()
        for source in self.sources:
            child = getattr(source, "supervisor", None)
            if isinstance(child, Supervisor):
                self.supervisor.adopt(child)
        self._stopped = False
        self._prompt_tick_pending = False
        # One live stream at a time: tags records with its id and writes its summary when it ends.
        self.sessions = SessionRecorder(
            gap_s=settings.sessions.gap_s,
            interval_s=settings.sampling.interval_s,
            platform=settings.platform,
            configured_kbps=(settings.stream.video_bitrate_kbps, settings.stream.audio_bitrate_kbps),
            run_id=lambda: self.log_writer.stem if self.log_writer is not None else None,
        )
        self._os = os_features.current()  # read once: what this machine offers does not change while it runs
        self._unavailable_features = self._os.unavailable()
        self._static_info: dict[str, Any] | None = None
        self.capacity = CapacityTracker()  # what the uplink carries: read by the rules and the TUI alike
        self._capacity: CapacityEstimate | None = None
        self._snapshot = self._build_snapshot()
        self.ticks = 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.outputs.open(started_at=self.started_at, pid=self.pid)
        self.emit(RunStarted(at=self.started_at, agent=self._agent_info()))
        for name, work in self.outputs.background_work():
            self._tasks.append(self.supervisor.spawn(name, work, what=_OUTPUT_TASKS.get(name)))
        awaited = [s.stale_after_s for s in self.sources if s.name in self._awaited_sources]
        self._startup_deadline = self.clock() + max(awaited, default=0.0)
        for source in self.sources:
            self._tasks.append(self._supervise(source))
        self._tasks.append(asyncio.create_task(self._tick_forever(), name="tick"))

    async def stop(self, reason: str = "stopped") -> None:
        """Stop sources and jobs, write the last record, close the log. Calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for job in ("bandwidth", "preflight"):
            await self.jobs.cancel(job)
        # Bounded: a task that swallowed its cancellation (a library bug) must not hang the shutdown.
        _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S) if self._tasks else (set(), set())
        for task in stuck:
            log.error("task %s did not stop within %g s; abandoning it", task.get_name(), STOP_TIMEOUT_S)
        self._tasks.clear()
        for source in self.sources:
            try:
                async with asyncio.timeout(5):
                    await source.close()
            except Exception:
                log.exception("source %s did not close cleanly", source.name)
        for record in self.sessions.close(self.clock(), detail=reason):
            self.emit(record)
        await self.outputs.send_last_notifications()
        self.emit(RunStopped(at=utc_now(), reason=reason, uptime_s=round(self.clock() - self.started_monotonic, 3)))
        await self.outputs.close()

    def _supervise(self, source: Source) -> asyncio.Task[None]:
        """Run a source; if it ever returns or crashes: logged, alerted, reported as its failure, restarted."""

        def crashed(reason: str) -> None:
            self.report_failure(source.name, f"crashed: {reason}; restarting")

        return self.supervisor.spawn(
            f"source:{source.name}",
            lambda: source.run(self),
            what=f"the {source.name} source stopped measuring",
            backoff=Backoff(2.0, 30.0),
            on_end=crashed,
        )

    async def _tick_forever(self) -> None:
        """Tick on the beat (agent/beat.py): the sources woken with it publish first, then the tick judges."""
        interval_s = self.settings.sampling.interval_s
        while True:
            await sleep_until_next_beat(interval_s, self.clock)  # behind (suspend, overload): no burst
            await after_peers()
            try:
                self.tick()
            except Exception:  # a bug in a rule must not stop the agent; it is logged with its traceback
                log.exception("tick failed")

    # --- SampleSink ------------------------------------------------------------------------------

    def publish(self, source: str, sample: Sample) -> None:
        previous = self._latest.get(source)
        self._latest[source] = sample
        if sample.PROMPT_FIELDS and previous is not None and _changed(previous, sample, sample.PROMPT_FIELDS):
            self._request_prompt_tick()
        health = self._health.setdefault(source, _SourceHealth(source, 3 * self.settings.sampling.interval_s))
        health.last_sample_at = sample.taken_at
        health.last_sample_monotonic = self.clock()
        health.error = None
        health.consecutive_failures = 0
        self._set_state(health, "ok")
        self.history.record(sample.taken_at.timestamp(), sample.metrics(), monotonic_s=self.clock())
        self.incidents.observe_sample(sample)
        if isinstance(sample, RelaySample):
            for switch in sample.ingest_switches:  # events, not conditions: one alert each, and a log line
                self.emit(AlertRecord(at=switch.at, change=AlertChange(change="raised", alert=switch_alert(switch))))
        if self.bus.subscriber_count:
            payload = f'{{"type":"sample","source":"{source}","sample":{sample.model_dump_json()}}}'
            self.bus.publish("sample", redact(payload))

    def report_failure(self, source: str, message: str) -> None:
        health = self._health.setdefault(source, _SourceHealth(source, 3 * self.settings.sampling.interval_s))
        health.error = redact(message)
        health.consecutive_failures += 1
        if health.last_sample_monotonic is None:
            self._set_state(health, "error")
        elif self.clock() - health.last_sample_monotonic > health.stale_after_s:
            self._set_state(health, "stale")

    def _set_state(self, health: _SourceHealth, state: SourceStateName) -> None:
        if health.state == state:
            return
        health.state = state
        if state in ("error", "stale"):
            log.warning("source %s is %s: %s", health.name, state, health.error or "no recent sample")
        elif state == "ok":
            log.info("source %s is ok", health.name)
        self.emit(SourceStateRecord(at=utc_now(), status=self._status_of(health)))

    def _request_prompt_tick(self) -> None:
        """Evaluate the rules now, once, for a fast source whose verdict changed (the uplink's early warning
        at 4 Hz): the 1 Hz tick would add up to a second to an alert that must come within one."""
        if self._prompt_tick_pending or self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # published outside the agent's loop (a test): the next tick will see it
        self._prompt_tick_pending = True
        loop.call_soon(self._prompt_tick)

    def _prompt_tick(self) -> None:
        self._prompt_tick_pending = False
        try:
            self.tick(prompt=True)
        except Exception:  # as in _tick_forever: a bug in a rule must not stop the agent
            log.exception("prompt tick failed")

    # --- tick ------------------------------------------------------------------------------------

    def tick(self, *, prompt: bool = False) -> HealthSnapshot:
        """One tick: snapshot, rules, records. `prompt`: an evaluation between ticks (a fast source's verdict
        changed): alerts and the served snapshot only; no tick record and no session tick, whose counts and
        durations assume one tick per interval."""
        now = self.clock()
        for health in self._health.values():
            last = health.last_sample_monotonic
            if last is not None and now - last > health.stale_after_s and health.state == "ok":
                self._set_state(health, "stale")
        snapshot = self._build_snapshot()
        self._capacity = self.capacity.update(snapshot, now)
        snapshot = snapshot.model_copy(update={"upload_capacity": self._capacity})
        for record in [] if prompt else self.sessions.before_tick(snapshot, now):
            self.emit(record)
        if self.rules is not None:
            changes = self.rules.evaluate(snapshot, self.history, monotonic_s=now) + self.supervisor.take_changes()
            for change in changes:
                if change.change == "cleared":
                    self._recently_cleared.appendleft(change.alert)
                at = utc_now()
                self.incidents.observe_alert(change, at)
                self.emit(AlertRecord(at=at, change=change))
            if changes:
                snapshot = self._build_snapshot()
        self._snapshot = snapshot
        if prompt:
            return snapshot
        self.ticks += 1
        self.emit(TickRecord.model_construct(snapshot=snapshot))
        return snapshot

    def _status_of(self, health: _SourceHealth) -> SourceStatus:
        age = None if health.last_sample_monotonic is None else round(self.clock() - health.last_sample_monotonic, 3)
        # Built every tick from our own typed state: construct it, do not validate it again.
        return SourceStatus.model_construct(
            name=health.name,
            state=health.state,
            last_sample_at=health.last_sample_at,
            age_s=age,
            error=health.error,
            consecutive_failures=health.consecutive_failures,
        )

    def _agent_info(self) -> AgentInfo:
        if self._static_info is None:  # what does not change while the agent runs, redacted once
            ingest = self.settings.ingest
            self._static_info = {
                "version": __version__,
                "pid": self.pid,
                "started_at": self.started_at,
                "platform": self.settings.platform,
                "ingest_primary": redact_url(ingest.primary) if ingest.primary else None,
                "ingest_backups": [redact_url(url) for url in ingest.backups],
                "os": self._os.platform,
                "unavailable_features": self._unavailable_features,
            }
        return AgentInfo.model_construct(
            **self._static_info,
            uptime_s=round(self.clock() - self.started_monotonic, 3),
            api_url=self.api_url,
            jobs_running=[job for job in ("preflight", "bandwidth") if self.jobs.running(job)],
        )

    def _build_snapshot(self) -> HealthSnapshot:
        alerts = self.active_alerts()
        taken_at = utc_now()
        samples: dict[str, Any] = {
            name: sample for name, sample in self._latest.items() if isinstance(sample, _SNAPSHOT_SAMPLES.get(name, ()))
        }
        # Every part is already a validated model of the right type (or built from our own typed state):
        # construct, do not validate it all again, once or twice a second.
        return HealthSnapshot.model_construct(
            bandwidth=self._last_bandwidth(),
            taken_at=taken_at,
            agent=self._agent_info(),
            overall=overall_state(alerts, measured=self._has_measured()),
            sources={name: self._status_of(health) for name, health in self._health.items()},
            alerts=alerts,
            shipping=self.shipper.state() if self.shipper is not None else None,
            logging=self.outputs.logging_status(),
            incidents=self.incidents.recent(taken_at),
            upload_capacity=self._capacity,
            **samples,
        )

    def _has_measured(self) -> bool:
        """Whether the sources have reported since start-up; once true, it stays true."""
        if not self._measured:
            reported = all(
                health.state != "starting" for name, health in self._health.items() if name in self._awaited_sources
            )
            overdue = self._startup_deadline is not None and self.clock() >= self._startup_deadline
            self._measured = reported or overdue
        return self._measured

    def _last_bandwidth(self) -> BandwidthResult | None:
        """The last successful bandwidth test (a job's report), not a polled source."""
        finished = self.jobs.last_successful("bandwidth")
        if finished is None or finished.report is None:
            return None
        cached = self._bandwidth_cache
        if cached is None or cached[0] != finished.job_id:
            cached = self._bandwidth_cache = (finished.job_id, BandwidthResult.model_validate(finished.report))
        return cached[1]

    # --- reading ---------------------------------------------------------------------------------

    @property
    def log_writer(self) -> HealthLogWriter | None:
        return self.outputs.log_writer

    @property
    def shipper(self) -> Shipper | None:
        return self.outputs.shipper

    @property
    def notifier(self) -> Notifier | None:
        return self.outputs.notifier

    @property
    def sequencer(self) -> Sequencer | None:
        return self.outputs.sequencer

    @property
    def snapshot(self) -> HealthSnapshot:
        return self._snapshot

    def active_alerts(self) -> list[Alert]:
        if self.rules is None:
            return []
        alerts = self.rules.active_alerts() + self.supervisor.active_alerts()
        return sorted(alerts, key=lambda alert: (_SEVERITY_ORDER[alert.severity], alert.since))

    def recently_cleared_alerts(self) -> list[Alert]:
        return list(self._recently_cleared)

    # --- output ----------------------------------------------------------------------------------

    def emit(self, record: BaseModel, event_type: str | None = None) -> None:
        """Serialise a record once, redact it, and hand it to the event stream and every sink."""
        record = self.sessions.observe(record)  # tagged with the live session's id, counted in its summary
        line = redact(record.model_dump_json())
        line = self.outputs.stamp(line)
        kind = event_type or str(getattr(record, "type", type(record).__name__))
        self.bus.publish(kind, line)
        for sink in self.sinks:
            sink.write_line(line)


def _relay_sources(settings: Settings) -> list[Source]:
    """The relay's own source when it runs; its modules load only then. Enabled with no ingest yet, a stand-in
    that starts it once `relay point-obs` gives one (agent/relay/standby.py)."""
    from agent.relay.event_loop import relay_runs

    if not relay_runs(settings):
        from agent.relay.standby import StandbyRelaySource

        return [StandbyRelaySource(settings)] if settings.relay.enabled else []
    from agent.relay.source import relay_sources

    return relay_sources(settings)

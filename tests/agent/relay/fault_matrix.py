"""The failover fault matrix (issue 25): ffmpeg publishes through the relay to recording nginx-rtmp ingests,
the primary fails in one of four ways at one of seven moments, and the run checks the relay's promise.

Faults: `kill` (SIGKILL of nginx; it runs one process, master and worker in one), `close` (the ingest ends
the connection politely, FIN, and refuses from then on), `reset` (RST, then refuses), `cut` (the primary's
namespace link goes down: no packet, no reset; needs root). Moments: during the RTMP `handshake`, the
`connect`, the `publish` (each a random 0-3 ms after the relay's publisher enters that stage), `mid_gop`
(a random point of a 1 s GOP while live), `draining` (the ingest blips once, the relay reconnects to it,
and the fault comes while the replayed backlog is still queued), `reconnecting` (the ingest blips, and the
fault comes during the relay's reconnect: in a random stage or its backoff) and `twice` (the primary
fails, then the first backup, mid-GOP: three ingests, two failovers).

A run passes when every failover reaches the next ingest within stall_s + failover_after_s + 1 s (from
the fault to the first picture in its recording), the last recording decodes with no error
(`ffmpeg -v error`), ffmpeg (the encoder) printed nothing and never stalled, and no relay task ended.
Shared by the suite (a few runs) and bench/relay_failover.py (50 per case).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.relay.relay import Relay
from agent.relay.settings import RelaySettings
from agent.rtmp.client import RtmpPublisher
from tests.agent.relay.failover_peers import decode_errors, ffmpeg_publishing, first_picture_seen
from tests.peers.fault_proxy import FaultProxy
from tests.peers.netns import NetnsHost, namespace_host
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp

Fault = Literal["kill", "close", "reset", "cut"]
Moment = Literal["handshake", "connect", "publish", "mid_gop", "draining", "reconnecting", "twice"]
FAULTS: tuple[Fault, ...] = ("kill", "close", "reset", "cut")
MOMENTS: tuple[Moment, ...] = ("handshake", "connect", "publish", "mid_gop", "draining", "reconnecting", "twice")
STAGES = ("handshake", "connect", "publish")

STALL_S = 1.0
FAILOVER_AFTER_S = 1.0
BOUND_S = STALL_S + FAILOVER_AFTER_S + 1.0
PROGRESS_GAP_S = 2.0  # ffmpeg reports progress every 0.25 s: a longer gap is an encoder that was held up
KEY = "fm"


@dataclass
class RunResult:
    fault: str
    moment: str
    loop: str
    failover_s: list[float] = field(default_factory=list)  # fault -> first picture at the next ingest
    problems: list[str] = field(default_factory=list)  # empty: the run passed
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems


class FaultyIngest:
    """One recording nginx-rtmp ingest that can be made to fail (`fail`) or to blip once (`blip`)."""

    def __init__(self, fault: Fault | None, folder: Path) -> None:
        self.fault = fault
        self.folder = folder
        folder.mkdir(parents=True)
        self._stack = contextlib.ExitStack()
        self._nginx_stack = contextlib.ExitStack()
        self.host: NetnsHost | None = None
        self.proxy: FaultProxy | None = None
        if fault == "cut":
            self.host = self._stack.enter_context(namespace_host())
        self.nginx = self._start_nginx(None)
        if fault in ("close", "reset"):
            self.proxy = FaultProxy(("127.0.0.1", self.nginx.port))
            self._stack.callback(self.proxy.close)

    def _start_nginx(self, port: int | None) -> NginxRtmp:
        if self.host is not None:
            return self._nginx_stack.enter_context(
                nginx_rtmp(host=self.host.address, netns_exec=self.host.exec_args(), record_dir=self.folder)
            )
        return self._nginx_stack.enter_context(nginx_rtmp(port=port, record_dir=self.folder))

    @property
    def url(self) -> str:
        if self.proxy is not None:
            return f"rtmp://127.0.0.1:{self.proxy.port}/live/{KEY}"
        return self.nginx.url(KEY)

    @property
    def recording(self) -> Path:
        return self.folder / f"{KEY}.flv"

    def fail(self) -> None:
        """For good (until the run ends)."""
        if self.fault == "kill":
            os.kill(self.nginx.process.pid, signal.SIGKILL)
        elif self.fault in ("close", "reset"):
            assert self.proxy is not None
            self.proxy.set_mode("refuse")  # first: the reconnect finds nobody
            self.proxy.drop_connections(reset=self.fault == "reset")
        elif self.fault == "cut":
            assert self.host is not None
            self.host.cut()

    async def blip(self, lost: Callable[[], bool]) -> None:
        """Once: the connection ends the same way, and the ingest is back at once (`lost`: the relay noticed)."""
        if self.fault == "kill":
            port = self.nginx.port
            os.kill(self.nginx.process.pid, signal.SIGKILL)
            self._nginx_stack.close()
            self._nginx_stack = contextlib.ExitStack()
            self.nginx = await asyncio.to_thread(self._start_nginx, port)
        elif self.fault in ("close", "reset"):
            assert self.proxy is not None
            self.proxy.drop_connections(reset=self.fault == "reset")
        elif self.fault == "cut":
            assert self.host is not None
            self.host.cut()
            await _until(lost, STALL_S + 3, "the relay to notice the cut link")
            self.host.restore()

    def close(self) -> None:
        self._nginx_stack.close()
        self._stack.close()


class _StagePublisher(RtmpPublisher):
    """The relay's own publisher, telling the harness each stage it enters (to fault at that moment)."""

    on_stage: Callable[[_StagePublisher, str], None] | None = None

    @property  # type: ignore[override]
    def _stage(self) -> str:
        return str(self.__dict__.get("_stage_now", ""))

    @_stage.setter
    def _stage(self, value: str) -> None:
        self.__dict__["_stage_now"] = value
        if self.on_stage is not None:
            self.on_stage(self, value)


async def _until(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.005) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def _first_picture(path: Path, since_s: float, timeout_s: float) -> float:
    """Seconds from `since_s` to the first picture recorded at `path` (polled every 10 ms)."""
    deadline = since_s + timeout_s
    while not await asyncio.to_thread(first_picture_seen, path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no picture at {path.parent.name} within {timeout_s:g} s of the fault")
        await asyncio.sleep(0.01)
    return time.monotonic() - since_s


class _Run:
    def __init__(self, fault: Fault, moment: Moment, folder: Path, rng: random.Random) -> None:
        self.fault, self.moment, self.rng = fault, moment, rng
        self.ingests = [FaultyIngest(fault, folder / "primary")]
        self.ingests.append(FaultyIngest(fault if moment == "twice" else None, folder / "backup"))
        if moment == "twice":
            self.ingests.append(FaultyIngest(None, folder / "backup2"))
        self.armed: str | None = None  # the stage that faults the primary, once armed
        self.faulted_at: float | None = None
        self.note = ""

    def close(self) -> None:
        for ingest in self.ingests:
            ingest.close()

    def connect(self, settings: RelaySettings) -> Callable[[str], RtmpPublisher]:
        def factory(url: str) -> RtmpPublisher:
            publisher = _StagePublisher(url, chunk_size=settings.chunk_size, timeout_s=settings.ingest_timeout_s)
            if url == self.ingests[0].url:
                publisher.on_stage = self._on_stage
            return publisher

        return factory

    def _on_stage(self, publisher: _StagePublisher, stage: str) -> None:
        if self.armed == stage:
            self.armed = None
            delay_s = self.rng.uniform(0, 0.003)
            asyncio.get_running_loop().call_later(delay_s, self._fault_primary, f"in {stage} +{delay_s * 1000:.1f} ms")

    def _fault_primary(self, note: str, at_s: float | None = None) -> None:
        if self.faulted_at is None:
            self.faulted_at = time.monotonic() if at_s is None else at_s
            self.note = note
            self.ingests[0].fail()

    async def inject(self, relay: Relay) -> None:
        """Fault the primary at the run's moment; returns once it is faulted."""
        destination = relay.destinations[0]
        moment = self.moment
        if moment in ("mid_gop", "twice", "draining", "reconnecting"):
            await _until(lambda: destination.state == "live" and destination.frames_out_total > 45, 15,
                         "1.5 s at the primary")  # fmt: skip
        if moment in ("mid_gop", "twice"):
            await asyncio.sleep(self.rng.uniform(0, 1.0))  # a random point of the 1 s GOP
            self._fault_primary("mid-GOP")
        elif moment == "draining":
            real_resume = destination._resume

            def resume_then_fault() -> None:
                real_resume()
                destination._resume = real_resume  # type: ignore[method-assign]
                queued = destination.queue.duration_ms
                if destination.rotation.index == 0:
                    self._fault_primary(f"with {queued} ms queued after the reconnect")
                else:  # the blip itself ended in a failover (a cut link): it is the fault, timed from it
                    self._fault_primary("the blip failed over", at_s=blip_at)

            destination._resume = resume_then_fault  # type: ignore[method-assign]
            blip_at = time.monotonic()
            await self.ingests[0].blip(lambda: destination.state != "live")
        elif moment == "reconnecting":
            reconnects = destination.connects_total
            choice = self.rng.choice([*STAGES, "backoff"])
            if choice != "backoff":
                self.armed = choice
            blip_at = time.monotonic()
            await self.ingests[0].blip(lambda: destination.state != "live")
            if choice != "backoff":  # the blip may itself end in a failover (a cut link): then it is the fault
                await _until(lambda: self.faulted_at is not None or destination.rotation.index != 0, 15,
                             "the reconnect's stage")  # fmt: skip
                self._fault_primary("the blip failed over", at_s=blip_at)
            if choice == "backoff":
                await _until(lambda: destination.state == "retrying" or destination.connects_total > reconnects,
                             STALL_S + 3, "the reconnect's backoff")  # fmt: skip
                self._fault_primary(f"in the reconnect's backoff ({destination.state})")
        await _until(lambda: self.faulted_at is not None, 15, "the fault's moment")


async def run_case(
    fault: Fault, moment: Moment, folder: Path, seed: int | None = None, margin_s: float = 0.0
) -> RunResult:
    """One run of the matrix on the running event loop. `margin_s` widens the time bounds (the failover's and
    the encoder's longest progress gap) for the suite on a loaded machine; the bench keeps the exact ones."""
    loop_name = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    result = RunResult(fault, moment, loop_name)
    rng = random.Random(seed)
    run = await asyncio.to_thread(_Run, fault, moment, folder, rng)
    try:
        await _run(run, result, margin_s)
    except (TimeoutError, AssertionError) as exc:
        result.problems.append(str(exc))
    finally:
        await asyncio.to_thread(run.close)
    result.note = run.note
    return result


async def _run(run: _Run, result: RunResult, margin_s: float) -> None:
    settings = RelaySettings.model_validate(
        {"listen": "127.0.0.1:0", "stall_s": STALL_S, "failover_after_s": FAILOVER_AFTER_S}
    )
    relay = Relay(settings, [ingest.url for ingest in run.ingests], connect=run.connect(settings))
    if run.moment in STAGES:
        run.armed = run.moment  # the very first connection to the primary
    await relay.start()
    destination = relay.destinations[0]
    try:
        async with ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", 40) as ffmpeg:
            try:
                await run.inject(relay)
                assert run.faulted_at is not None
                result.failover_s.append(await _first_picture(run.ingests[1].recording, run.faulted_at, BOUND_S + 5))
                if run.moment == "twice":
                    await _until(lambda: destination.state == "live", 5, "live at the first backup")
                    await asyncio.sleep(run.rng.uniform(0.3, 1.3))
                    second_at = time.monotonic()
                    run.ingests[1].fail()
                    result.failover_s.append(await _first_picture(run.ingests[2].recording, second_at, BOUND_S + 5))
                await asyncio.sleep(0.5)  # some media at the backup, to decode
                ended = [task.get_name() for task in relay.supervisor.tasks if task.done()]
                if relay.supervisor.endings_total or ended:
                    result.problems.append(f"a relay task ended ({relay.supervisor.endings_total} ends; done: {ended})")
                if ffmpeg.process.returncode is not None:
                    result.problems.append(f"ffmpeg exited ({ffmpeg.process.returncode}) before the end")
            finally:
                if ffmpeg.process.returncode is None:
                    ffmpeg.process.terminate()
                    await ffmpeg.process.wait()
        if ffmpeg.stderr:
            result.problems.append(f"ffmpeg noticed: {ffmpeg.stderr.decode(errors='replace').strip()[:300]}")
        if ffmpeg.longest_progress_gap_s > PROGRESS_GAP_S + margin_s:
            result.problems.append(f"ffmpeg stalled {ffmpeg.longest_progress_gap_s:.2f} s between progress reports")
    finally:
        await relay.close()
    bound_s = BOUND_S + margin_s
    late = [f"{seconds:.2f} s" for seconds in result.failover_s if seconds > bound_s]
    if late:
        result.problems.append(f"failover took {', '.join(late)} (bound {bound_s:g} s)")
    if result.failover_s:
        errors = await asyncio.to_thread(decode_errors, run.ingests[-1].recording)
        if errors:
            result.problems.append(f"the backup's recording does not decode: {errors.strip()[:300]}")


@contextlib.contextmanager
def loop_runner(loop: str) -> Iterator[asyncio.Runner]:
    factory: Any = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        yield runner

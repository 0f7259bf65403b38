"""One ingest the relay forwards to: its own queue, its own RTMP publisher connection, its own counters.

While a stream is live, frames are offered to every destination (`offer` never blocks, so a slow ingest
never holds up the encoder or another destination); each destination's forwarding task pops its queue and
writes the bytes exactly as the encoder sent them. A new connection first gets the cached metadata and
sequence headers (unless they are still queued). What sits below the queue (asyncio's write buffer, the
kernel's unsent bytes) is kept to about 0.2 s of the stream at the rate the ingest takes it (below_queue.py),
so congestion shows up in our queue, where the drop policy can act on it.

Reconnecting, failing over to backups and several destinations (issue 11) build on this: `urls` is the
ordered list of ingests to try, `connect` is swappable for tests, and `run` is the one loop that owns a
connection's life.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final, Literal

from agent.errors import ProtocolError
from agent.models import IngestSwitch, TcpInfo
from agent.models.base import utc_now
from agent.net.tcpinfo import read_tcp_info
from agent.redact import redact
from agent.relay import below_queue
from agent.relay.below_queue import BelowQueueLimits, EgressRate
from agent.relay.connection_watch import read_acks, watch_connection
from agent.relay.failover import (
    IngestLost,
    IngestRotation,
    Outage,
    PrimaryProbe,
    Resilience,
    SentLedger,
    ms_before,
)
from agent.relay.frames import PICTURE_KINDS, Frame, FrameKind, HeaderCache
from agent.relay.queue import MediaQueue, QueueLimits
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from agent.rtmp.connection import CSID_AUDIO, CSID_STREAM, CSID_VIDEO
from agent.rtmp.errors import IngestError, IngestRejected

log = logging.getLogger(__name__)

LATENCY_SAMPLES: Final = 4096
SWITCH_HISTORY: Final = 64
# Media in the sense of the ledger and the GOP kept for replay: pictures and audio (not headers, metadata).
_MEDIA_KINDS: Final = PICTURE_KINDS | {FrameKind.AUDIO}

DestinationState = Literal["idle", "connecting", "live", "retrying", "rejected"]
PublisherFactory = Callable[[str], RtmpPublisher]


def _nothing_to_settle() -> None:
    return None


class Destination:
    """Forwards the live stream to one ingest. `run()` is its task; `start_stream` / `end_stream` bracket a stream."""

    def __init__(
        self,
        urls: list[str],
        headers: HeaderCache,
        *,
        limits: QueueLimits | None = None,
        chunk_size: int = 65536,
        timeout_s: float = 10.0,
        finish_timeout_s: float = 5.0,
        connect: PublisherFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        resilience: Resilience | None = None,
        name: str | None = None,
    ) -> None:
        self.urls = urls
        self.rotation = IngestRotation(urls, (resilience or Resilience()).failover_after_s, clock)
        self.resilience = resilience or Resilience()
        self.name = name or self.rotation.names[0]  # never the key or the full URL
        self.headers = headers
        self.queue = MediaQueue(limits)
        self.chunk_size = chunk_size
        self.timeout_s = timeout_s
        self.finish_timeout_s = finish_timeout_s
        self._connect = connect or (lambda url: RtmpPublisher(url, chunk_size=chunk_size, timeout_s=timeout_s))
        self._clock = clock
        self.state: DestinationState = "idle"
        self.last_error: str | None = None
        self.publisher: RtmpPublisher | None = None
        self._wake = asyncio.Event()
        self._streaming = False  # between start_stream and end_stream
        self._forwarding = False  # connected and past the headers: offer() may send directly
        self._finished = asyncio.Event()
        self._finished.set()
        # Counters (monotonic over the agent's life).
        self.frames_out_total = 0
        self.bytes_out_total = 0
        self.connects_total = 0
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        # Resilience (failover.py): the current outage, the switches made, the probe of the primary.
        self.reconnects_total = 0
        self.failovers_total = 0
        self.last_switch: IngestSwitch | None = None
        self.switches: deque[IngestSwitch] = deque(maxlen=SWITCH_HISTORY)
        self._outage: Outage | None = None
        self._ledger: SentLedger | None = None
        self._probe: PrimaryProbe | None = None
        # The GOP being sent (from its keyframe): if the connection is lost, the next one starts with it
        # again, so a lost connection costs no frames as long as the queue bounds allow.
        self._gop: list[Frame] = []
        self._gop_bytes = 0
        # What the connection may hold below the queue (below_queue.py), from the rate it is acknowledged.
        self.below_queue = BelowQueueLimits()
        self._write_buffer_high_bytes = self.below_queue.write_buffer_high_bytes  # read per frame: no chain
        self._egress = EgressRate()
        # Set by the relay: accounts for the frames its fast lane wrote but has not yet noted here (counters,
        # ledger, replay, latency). Called before anything reads or extends those.
        self.settle_fast_lane: Callable[[], None] = _nothing_to_settle

    # ---------------------------------------------------------------------------------- the stream

    def start_stream(self) -> None:
        self.queue.clear()
        self._streaming = True
        self._finished.clear()
        self._wake.set()

    def offer(self, frame: Frame) -> None:
        """Send a frame now if nothing waits and the link takes it, else queue it (the drop policy may then
        drop it or older ones). Never blocks."""
        if not self._streaming:
            return
        publisher = self.direct_publisher()
        if publisher is not None:
            # The common, uncongested case costs no queueing and no task switch.
            self._send_now(publisher, frame)
            return
        self.queue.push(frame)
        self._wake.set()

    def can_send_now(self) -> bool:
        """Whether a frame offered now would be written at once: connected, past the headers, nothing queued,
        not about to go back to the primary, and the transport's buffer below its high-water mark."""
        return self.direct_publisher() is not None

    # ------------------------------------------------------------------------ the relay's fast lane

    def direct_publisher(self) -> RtmpPublisher | None:
        """The connection to write to directly, when a frame offered now would be written at once (the
        relay's fast lane writes there itself, flushes, and reports each frame with `account_for`)."""
        publisher = self.publisher
        if (
            publisher is None
            or not (self._forwarding and self._streaming and publisher.publishing)
            or self.queue
            or self.queue.dropping  # a drop is under way: every frame goes through the policy (queue.py)
            or (self._probe is not None and self._probe.due)  # going back to the primary at a keyframe
        ):
            return None
        transport = publisher.transport
        if transport is None or transport.get_write_buffer_size() > self._write_buffer_high_bytes:
            return None
        return publisher

    def account_for(self, frame: Frame, end_offset: int, sent_at_s: float) -> None:
        """What `_send_now` notes for each frame, for one the fast lane wrote itself (to `direct_publisher()`)."""
        self.frames_out_total += 1
        self.bytes_out_total += len(frame.payload)
        self._note_sent(frame, end_offset, sent_at_s)

    async def end_stream(self) -> None:
        """The encoder stopped: send what is queued (within `finish_timeout_s`), unpublish, disconnect."""
        self.settle_fast_lane()
        self._streaming = False
        self._wake.set()
        try:
            async with asyncio.timeout(self.finish_timeout_s + 2.0):
                await self._finished.wait()
        except TimeoutError:
            log.warning("ingest %s: could not finish the stream in time", self.name)

    def tcp_info(self) -> TcpInfo | None:
        publisher = self.publisher
        sock: Any = None if publisher is None else publisher.socket
        return None if sock is None else read_tcp_info(sock)

    # --------------------------------------------------------------------------------- the task

    async def run(self) -> None:
        """Until cancelled: for each stream, connect and forward; on loss reconnect, fail over, resume.
        Never ends otherwise: if it does (a bug), the relay's supervisor (agent/supervise.py) calls
        `task_ended` and runs it again, and the stream goes on from its queue."""
        if self._streaming:
            self._finished.clear()  # started again mid-stream: end_stream waits for this task once more
        try:
            await self._run()
        finally:
            self.state = "idle"
            self._finished.set()  # nobody waits for a stream to finish sending once this task is gone

    def task_ended(self, reason: str) -> None:
        """The forwarding task ended unexpectedly: the stream keeps its queue and the GOP being sent (sent
        again from its keyframe by the next connection), as after any lost connection."""
        self.settle_fast_lane()
        self._forwarding = False
        publisher, self.publisher, self._ledger = self.publisher, None, None
        if publisher is not None:
            publisher.abort()
        self.last_error = f"the relay's task for this ingest ended ({reason}); starting it again"
        if self._streaming:
            self.rotation.failed()  # the failover clock runs from here, as for a lost connection
            self.queue.holding = True
            if self._outage is None:
                self._outage = self._new_outage(self.last_error)

    async def _run(self) -> None:
        rotation = self.rotation
        while True:
            if not self._streaming:
                self.state = "idle"
                self._outage = None
                self._gop, self._gop_bytes = [], 0
                self.queue.holding = False
                rotation.restart()
                self._finished.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if rotation.choose():
                log.warning("ingest %s: moving on to %s", self.name, rotation.name)
            try:
                outcome = await self._session(rotation.index)
            except IngestRejected as exc:
                self._failed(exc, "rejected")
            except (IngestError, ProtocolError, OSError, IngestLost, TimeoutError) as exc:
                self._failed(exc, "retrying")
            except Exception as exc:  # a bug, not the network: still only this connection's loss
                log.exception("ingest %s (%s): the session failed unexpectedly", self.name, rotation.name)
                self._failed(exc, "retrying")
            else:
                if outcome == "return":
                    self._outage = self._new_outage("returning to the primary", planned=True)
                    rotation.go_to(0)
                    rotation.succeeded()
                continue
            if self._streaming:
                await self._sleep_unless_ended(rotation.delay_s())

    def _failed(self, exc: BaseException, state: DestinationState) -> None:
        self.state = state
        self.last_error = redact(str(exc)) or type(exc).__name__
        self.rotation.failed()
        if self._outage is None and self._streaming:
            self._outage = self._new_outage(self.last_error)
        self.queue.holding = True
        log.warning("ingest %s (%s): %s", self.name, self.rotation.name, self.last_error)

    def _new_outage(self, reason: str, *, planned: bool = False) -> Outage:
        self.settle_fast_lane()
        ledger = self._ledger
        unacked = [] if ledger is None or planned else ledger.unacknowledged()
        replay, self._gop, self._gop_bytes = self._gop, [], 0
        if replay and not planned:
            # Sent again from its keyframe on the next connection: only what came before it is lost.
            unacked = [ts for ts in unacked if ms_before(ts, replay[0].timestamp_ms)]
        dropped_before = self.queue.dropped_total
        if not planned:
            self.queue.requeue_front(replay)
        return Outage(
            from_index=self.rotation.index,
            reason=reason,
            lost_at_s=self._clock(),
            lost_at=utc_now(),
            dropped_before=dropped_before,
            unacked_ms=unacked,
            last_acked_media_ms=None if ledger is None else ledger.last_acked_media_ms,
            planned=planned,
        )

    async def _sleep_unless_ended(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                while self._streaming:
                    self._wake.clear()
                    await self._wake.wait()

    async def _session(self, index: int) -> str:
        """One connection: connect, resume, forward until the stream ends ("ended") or it is time to go back
        to the primary ("return"). Raises when the connection fails or is lost."""
        rotation = self.rotation
        self.state = "connecting"
        publisher = self._connect(rotation.urls[index])
        ledger = SentLedger()
        try:
            attempt_s = rotation.attempt_timeout_s(self.timeout_s, self.resilience.stall_s)
            try:
                async with asyncio.timeout(attempt_s):
                    await publisher.start()
            except TimeoutError as exc:
                raise IngestLost(f"{rotation.names[index]} did not answer within {attempt_s:.1f} s") from exc
            self.publisher = publisher
            self._ledger = ledger
            self.connects_total += 1
            self.last_error = None
            self.state = "live"
            rotation.succeeded()
            self._size_below_queue(publisher)
            log.info("relay forwarding to %s", publisher.url.redacted())
            self._resume()
            self._forwarding = True
            return await self._forward_and_watch(publisher, ledger)
        except BaseException as exc:
            try:
                self._note_loss(publisher, ledger, exc)
            except Exception:  # examining the loss must never turn it into the task's end (issue 25)
                log.exception("ingest %s: accounting for the lost connection failed", self.name)
            finally:
                publisher.abort()  # lost or cancelled: nothing polite can get through
            raise
        finally:
            self.settle_fast_lane()  # into this connection's ledger, before it goes
            self._forwarding = False
            self.publisher = None
            self._ledger = None
            await publisher.close()

    def _note_loss(self, publisher: RtmpPublisher, ledger: SentLedger, exc: BaseException) -> None:
        """What the lost connection took with it: the ledger's last word, the outage, the GOP to send again."""
        self.settle_fast_lane()  # before the ledger and the GOP are read
        self.queue.holding = True  # from now until a connection takes the stream: keep whole GOPs
        if self._ledger is not ledger:
            return
        read_acks(publisher, ledger, self.queue)  # the last word on what the ingest got (None once closed)
        if self._outage is None and self._streaming:
            self._outage = self._new_outage(redact(str(exc)) or type(exc).__name__)

    def _resume(self) -> None:
        """A new connection: drop what cannot decode without the lost one, send the headers, record the switch."""
        outage, self._outage = self._outage, None
        publisher = self.publisher
        assert publisher is not None
        if outage is not None:
            self.queue.drop_until_keyframe()
        resume_ms = self.queue.first_media_timestamp_ms()
        for frame in self.headers.frames():
            if not self.queue.contains(frame):
                # Restamped to where the stream resumes, so timestamps never go back on this connection.
                restamped = frame if resume_ms is None else replace(frame, timestamp_ms=resume_ms)
                self._write(publisher, restamped)
        if outage is not None:
            self._record_switch(outage, resume_ms)

    def _record_switch(self, outage: Outage, resume_ms: int | None) -> None:
        switch = outage.switch(
            destination=self.name,
            names=self.rotation.names,
            to_index=self.rotation.index,
            dropped_now=self.queue.dropped_total,
            resume_ms=resume_ms,
            now_s=self._clock(),
        )
        if switch.kind == "reconnect":
            self.reconnects_total += 1
        elif switch.kind == "failover":
            self.failovers_total += 1
        self.last_switch = switch
        self.switches.append(switch)
        log.warning(
            "ingest %s: %s from %s to %s after %.0f ms (%s); lost %.0f ms of media, %d frames",
            self.name, switch.kind, switch.from_ingest, switch.to_ingest, switch.outage_ms, switch.reason,
            switch.lost_media_ms, switch.lost_frames,
        )  # fmt: skip

    async def _forward_and_watch(self, publisher: RtmpPublisher, ledger: SentLedger) -> str:
        forward = asyncio.create_task(self._forward(publisher, ledger), name=f"relay-forward:{self.name}")
        watch = asyncio.create_task(
            watch_connection(
                publisher, ledger, self.queue, stall_s=self.resilience.stall_s, clock=self._clock,
                before_reading=self.settle_fast_lane, on_acked=self._note_egress,
            ),
            name=f"relay-watch:{self.name}",
        )  # fmt: skip
        probe: asyncio.Task[None] | None = None
        self._probe = None
        if self.rotation.on_backup and self.resilience.return_to_primary == "after_probe":
            self._probe = PrimaryProbe(self.rotation.urls[0], self.resilience.return_after_s, self._clock)
            probe = asyncio.create_task(self._probe.run(), name=f"relay-probe:{self.name}")
        tasks = {forward, watch} | ({probe} if probe else set())
        try:
            await asyncio.wait({forward, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._probe = None
        if forward.done() and not forward.cancelled():
            return forward.result()
        watch.result()  # raises IngestLost
        raise IngestLost("the connection watch ended")

    async def _forward(self, publisher: RtmpPublisher, ledger: SentLedger) -> str:
        queue = self.queue
        deadline: float | None = None
        catch_up_ms = queue.limits.disposable_drop_ms
        while True:
            # Clear before looking: a frame offered while we were away has set it again, so none is missed.
            self._wake.clear()
            frame = queue.peek()
            if frame is None:
                if not self._streaming:
                    await publisher.drain()
                    return "ended"
                await self._wake.wait()
                continue
            probe = self._probe
            if probe is not None and probe.due and frame.kind is FrameKind.VIDEO_KEY:
                log.info("ingest %s: the primary answered for %g s: going back", self.name, probe.return_after_s)
                await publisher.drain()
                return "return"
            queue.pop()
            self._send_now(publisher, frame)
            if queue.holding and queue.duration_ms < catch_up_ms:
                queue.holding = False  # caught up after a reconnect: the congestion policy applies again
            if not self._streaming:
                deadline = deadline or self._clock() + self.finish_timeout_s
                if self._clock() > deadline:
                    log.warning("ingest %s: gave up sending the last %d queued frames", self.name, len(queue))
                    queue.clear()
                    return "ended"
            if publisher.write_buffer_size > self._write_buffer_high_bytes:
                await publisher.drain()

    def _send_now(self, publisher: RtmpPublisher, frame: Frame) -> None:
        """Write one frame and hand it to the transport."""
        self.settle_fast_lane()  # what it wrote went first: the ledger and the replay keep that order
        self._write(publisher, frame)
        end_offset = publisher.bytes_sent
        publisher.flush()
        self._note_sent(frame, end_offset, self._clock())

    def _note_sent(self, frame: Frame, end_offset: int, sent_at_s: float) -> None:
        media = frame.kind in _MEDIA_KINDS
        ledger = self._ledger
        if ledger is not None:
            ledger.wrote(end_offset, frame.timestamp_ms, media)
        if media:
            self._remember_for_replay(frame)
        self.latencies_s.append(sent_at_s - frame.received_at_s)

    def _remember_for_replay(self, frame: Frame) -> None:
        if frame.kind is FrameKind.VIDEO_KEY:
            self._gop, self._gop_bytes = [frame], len(frame.payload)
        elif self._gop and frame.kind in _MEDIA_KINDS:
            self._gop.append(frame)
            self._gop_bytes += len(frame.payload)
            if self._gop_bytes > self.queue.limits.max_bytes // 2 or ms_before(
                self._gop[0].timestamp_ms + self.queue.limits.max_ms, frame.timestamp_ms
            ):
                self._gop, self._gop_bytes = [], 0  # a GOP too long to keep: a loss costs its frames

    def _write(self, publisher: RtmpPublisher, frame: Frame) -> None:
        stream_id = publisher.stream_id or 1
        type_id = frame.type_id
        csid = CSID_VIDEO if type_id == m.VIDEO else CSID_AUDIO if type_id == m.AUDIO else CSID_STREAM
        publisher.connection.send_message(csid, frame.timestamp_ms, type_id, stream_id, frame.payload)
        self.frames_out_total += 1
        self.bytes_out_total += len(frame.payload)

    def _size_below_queue(self, publisher: RtmpPublisher) -> None:
        """A new connection starts at the ceiling (below_queue.py) until its egress rate is known."""
        self._egress = EgressRate()
        self._set_below_queue(publisher, BelowQueueLimits())

    def _note_egress(self, acked_bytes: int, now_s: float) -> None:
        """The connection watch read the bytes acknowledged: resize what may sit below the queue."""
        rate = self._egress.observe(acked_bytes, now_s)
        publisher = self.publisher
        if rate is None or publisher is None:
            return
        limits = BelowQueueLimits.for_rate(rate)
        if not limits.close_to(self.below_queue):
            self._set_below_queue(publisher, limits)

    def _set_below_queue(self, publisher: RtmpPublisher, limits: BelowQueueLimits) -> None:
        self.below_queue = limits
        self._write_buffer_high_bytes = limits.write_buffer_high_bytes
        below_queue.apply(publisher.transport, publisher.socket, limits)

"""The relay's asyncio wiring: listen for encoders, run one publisher session per connection, fan frames out.

One stream at a time (a second encoder publishing while one is live is refused with
NetStream.Publish.BadName, as nginx-rtmp refuses it). Each connection is an `EncoderLink` (encoder_link.py),
an asyncio Protocol: malformed or hostile input, a handshake that never completes or an encoder that goes
silent closes that connection with a log line, and nothing else. The protocol work is in `publisher.py`;
the sending in `destination.py`; the decisions (who may publish, when a stream ends) here.

A *broadcast* is what the ingest sees: from the first publish to the end of the stream there. An encoder
that stops cleanly (deleteStream) ends it at once; one whose connection is lost (a reset, a timeout, a
crash) leaves it held with the slate (hold.py) for up to `relay.hold_s`, and an encoder that publishes
meanwhile takes it over at its first keyframe, its timestamps moved to continue the broadcast's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from agent import paths
from agent.backoff import Backoff
from agent.errors import SourceUnavailable
from agent.redact import register_secret
from agent.relay.access import ingest_connector, publish_key_matches
from agent.relay.destination import Destination, PublisherFactory
from agent.relay.encoder_link import EncoderLink
from agent.relay.failover import Resilience, destination_names
from agent.relay.fast_lane import FastLane
from agent.relay.frames import Frame, FrameKind, HeaderCache
from agent.relay.hold import Hold, SwitchBack, restamped
from agent.relay.ingress import IngressStats
from agent.relay.peer_log import PeerLog
from agent.relay.protection import Protection
from agent.relay.publisher import PublisherSession, PublishRequested
from agent.relay.queue import QueueLimits
from agent.relay.settings import RelaySettings
from agent.supervise import Supervisor

log = logging.getLogger(__name__)

SLOT_WAIT_S: Final = 5.0
# Registered secrets are redacted wherever they appear: only a key long enough to be a platform's key is
# registered, so "test" or "obs" typed into an encoder does not blank that word out of every log line.
SECRET_LOOKING_KEY_LENGTH: Final = 16  # a new publish waits this long for the previous stream to finish sending


_CACHED_KINDS: Final = frozenset({FrameKind.SEQUENCE_HEADER, FrameKind.METADATA})  # what HeaderCache keeps


def _nothing() -> None:
    return None


class RelayUnavailable(SourceUnavailable):
    """The relay cannot listen (port taken, address not on this machine)."""


class Relay:
    def __init__(
        self,
        settings: RelaySettings,
        ingest_urls: list[str],
        *,
        connect: PublisherFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        slate_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        # Disconnect protection (protection.py): the slates, the hold in progress, the time held.
        self.protection = Protection(settings, slate_dir or paths.user_data_dir() / "slates", clock)
        self._offset_ms = 0  # added to the live encoder's timestamps: it took over a held broadcast
        # Called when the relay's state changes between samples (an encoder lost, back, a hold ended), so
        # its source can publish at once: the alert must not wait for the next tick.
        self.on_change: Callable[[], None] = _nothing
        self.headers = HeaderCache()
        self.ingress = IngressStats(settings.stall_ms / 1000)
        limits = QueueLimits(
            disposable_drop_ms=settings.disposable_drop_ms,
            inter_drop_ms=max(settings.inter_drop_ms, settings.disposable_drop_ms),
            max_ms=max(settings.max_queue_ms, settings.inter_drop_ms, settings.disposable_drop_ms),
            max_bytes=settings.max_queue_bytes,
        )
        resilience = Resilience(
            stall_s=settings.stall_s,
            failover_after_s=settings.failover_after_s,
            return_to_primary=settings.return_to_primary,
            return_after_s=settings.return_after_s,
        )
        # The ingest with its backups first (failover), then relay.destinations, each on its own: its own
        # queue, drops, reconnects and task, so one slow or failing destination never holds up another.
        connect = connect or ingest_connector(settings)
        self._limits, self._resilience, self._connect = limits, resilience, connect
        self.ingest_urls = ingest_urls
        groups = ([ingest_urls] if ingest_urls else []) + [[url] for url in settings.destinations]
        names = destination_names(groups)
        self.destinations = [self._destination(urls, name) for urls, name in zip(groups, names, strict=True)]
        self._destination_tasks: dict[Destination, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None
        self._closing = False  # close() has begun: a connection it ends is no encoder lost mid-stream
        self.supervisor = Supervisor()  # the destinations' tasks (agent/supervise.py); the runtime adopts it
        self._tasks: set[asyncio.Task[None]] = set()
        # Each encoder connection is an EncoderLink (encoder_link.py); the work when one closes (ending its
        # stream) runs in a handler task, never cancelled: close() ends the connections instead.
        self._handlers: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.Transport] = set()
        # Open connections, oldest first: past relay.max_connections the oldest that is not publishing goes.
        self._links: dict[EncoderLink, None] = {}
        self.peer_log = PeerLog(log)  # per-connection warnings, rate-limited per peer address
        self._slot = asyncio.Lock()
        self._live: PublisherSession | None = None
        self.lane: FastLane | None = None  # the live stream's fast lane (fast_lane.py), while it is live
        self.port: int | None = None

    def _destination(self, urls: list[str], name: str) -> Destination:
        settings = self.settings
        destination = Destination(
            urls,
            self.headers,
            limits=self._limits,
            chunk_size=settings.chunk_size,
            timeout_s=settings.ingest_timeout_s,
            finish_timeout_s=settings.finish_timeout_s,
            connect=self._connect,
            clock=self.clock,
            resilience=self._resilience,
            name=name,
        )
        destination.settle_fast_lane = self.settle
        return destination

    def _run_destination(self, destination: Destination) -> None:
        """Under the supervisor: a task that ends is alerted and restarted."""
        task = self.supervisor.spawn(
            f"relay-destination:{destination.name}", destination.run, what=f"the relay stopped forwarding to "
            f"{destination.name}", severity="critical", backoff=Backoff(0.25, 5.0), on_end=destination.task_ended,
        )  # fmt: skip
        self._destination_tasks[destination] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def replace_ingest(self, ingest_urls: list[str]) -> bool:
        """Forward to another ingest from now on (the settings layer `relay point-obs` writes changed): only
        between streams, so a live or held broadcast never moves. False when one is; ask again later."""
        if self._live is not None or self.holding or self._slot.locked():
            return False
        if ingest_urls == self.ingest_urls:
            return True
        old = self.destinations[0] if self.ingest_urls else None
        rest = self.destinations[1:] if old is not None else self.destinations
        groups = ([ingest_urls] if ingest_urls else []) + [d.urls for d in rest]
        names = destination_names(groups)
        new = [self._destination(ingest_urls, names[0])] if ingest_urls else []
        self.destinations = new + rest
        self.ingest_urls = ingest_urls
        if old is not None:
            task = self._destination_tasks.pop(old, None)
            if task is not None:
                task.cancel()
        if self._server is not None:
            for destination in new:
                self._run_destination(destination)
        log.info("relay: the ingest is now %s (from the settings layer)", names[0] if new else "none")
        return True

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def holding(self) -> bool:
        return self.protection.hold is not None

    async def start(self) -> None:
        host, port = self.settings.host, self.settings.port
        try:
            self._server = await asyncio.get_running_loop().create_server(lambda: EncoderLink(self), host, port)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            hint = (
                "another RTMP server or a second agent is using it; set relay.listen to a free port"
                if exc.errno in (98, 48, 10048)
                else "check relay.listen"
            )
            raise RelayUnavailable(f"the relay cannot listen on {host}:{port}: {reason} ({hint})") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        for destination in self.destinations:
            self._run_destination(destination)
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]  # "uvloop" or "asyncio"
        log.info("relay listening on %s:%s (event loop: %s)", host, self.port, loop)

    async def close(self) -> None:
        """Stop listening, stop forwarding, close every encoder connection."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()  # the destinations; connection handlers are not in here (see spawn_handler)
        for transport in list(self._transports):
            transport.abort()  # each connection sees its end and finishes on its own
        pending = self._tasks | self._handlers
        if pending:
            await asyncio.wait(pending, timeout=5)
        await self.protection.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------- connections

    @property
    def encoder_links(self) -> list[EncoderLink]:
        """The encoder connections open now, oldest first."""
        return list(self._links)

    def link_opened(self, link: EncoderLink) -> None:
        if link.transport is not None:
            self._transports.add(link.transport)
        self._links[link] = None
        if len(self._links) > self.settings.max_connections:
            oldest = next((other for other in self._links if other.session is not self._live), None)
            if oldest is not None:
                oldest.evict(f"more than {self.settings.max_connections} connections (relay.max_connections)")

    def link_closed(self, link: EncoderLink) -> None:
        if link.transport is not None:
            self._transports.discard(link.transport)
        self._links.pop(link, None)

    def connection_dropped(self) -> None:
        self.ingress.connections_dropped_total += 1

    def spawn_handler(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """A connection's closing work (ending its stream): never cancelled, awaited by close()."""
        task = asyncio.create_task(coroutine, name=name)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def on_publish(self, session: PublisherSession, request: PublishRequested, where: str) -> None:
        key = request.stream_name.partition("?")[0]
        if len(key) >= SECRET_LOOKING_KEY_LENGTH:
            register_secret(key)  # it may be the real key: never show it (short words like "live" are not keys)
        if not publish_key_matches(self.settings, request.stream_name):
            self.ingress.publishers_refused_total += 1
            log.warning("relay: refused a publisher from %s: wrong stream key (relay.publish_key)", where)
            session.reject_publish(description="Wrong stream key")
            return
        if self.protection.hold is not None and self._live is None:
            self._take_over(session, request, where)
            return
        acquired = False
        live = self._live
        if live is None or not live.publishing:  # free, or the last stream is still being sent out: wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SLOT_WAIT_S):
                    await self._slot.acquire()
                    acquired = True
        if not acquired:
            self.ingress.publishers_refused_total += 1
            log.warning("relay: refused a second publisher from %s: a stream is already live", where)
            session.reject_publish()
            return
        self._live = session
        self.headers.clear()
        self._offset_ms = 0
        self.protection.new_broadcast()
        self.ingress.stream_started(request.encoder)
        for destination in self.destinations:
            destination.start_stream()
        if self.settings.fast_lane:
            self.lane = FastLane(session, self.destinations, self._note_frame, self.clock)
        session.accept_publish()
        log.info("relay: %s (%s) is publishing", where, request.encoder or "unknown encoder")
        self.on_change()  # the stream's start is on the timeline (and the API) now, not at the next beat

    def _take_over(self, session: PublisherSession, request: PublishRequested, where: str) -> None:
        """An encoder publishes while the broadcast is held: it goes on the air at its first keyframe."""
        hold = self.protection.hold
        assert hold is not None
        self._live = session
        hold.switch = SwitchBack()
        self.ingress.stream_started(request.encoder)
        session.accept_publish()
        log.info("relay: %s (%s) publishes: back from the slate at its first keyframe", where, request.encoder)
        self.on_change()

    def on_frame(self, frame: Frame) -> None:
        self.settle()  # the fast lane's frames came first
        hold = self.protection.hold
        if hold is not None:
            self._while_held(hold, frame)
            return
        if self._offset_ms:
            frame = restamped(frame, self._offset_ms)
        self._note_frame(frame)
        for destination in self.destinations:
            destination.offer(frame)

    def _note_frame(self, frame: Frame) -> None:
        if frame.kind in _CACHED_KINDS:
            self.headers.update(frame)
            if frame.kind is FrameKind.SEQUENCE_HEADER:
                self.protection.headers_changed(self.headers)
        self.ingress.record(frame)

    # ------------------------------------------------------------------------- holding with the slate

    def _send_slate(self, frame: Frame) -> None:
        if frame.kind is FrameKind.SEQUENCE_HEADER:
            self.headers.update(frame)  # what a new ingest connection must get first while the slate plays
        for destination in self.destinations:
            destination.offer(frame)

    def _while_held(self, hold: Hold, frame: Frame) -> None:
        """A frame from the encoder that took over a held broadcast, before or at its first keyframe."""
        self.ingress.record(frame)
        switch = hold.switch
        if switch is None:
            return
        back = switch.offer(frame, hold.player.end_ms())
        if back is None:
            return
        frames, self._offset_ms = back
        self.protection.finish()
        log.info(
            "relay: the encoder is back on the air after %.1f s of slate (%d of its frames before its keyframe dropped)",
            hold.held_s(),
            switch.frames_dropped,
        )
        for back_frame in frames:
            self._note_frame(back_frame)
            for destination in self.destinations:
                destination.offer(back_frame)
        live = self._live
        if self.settings.fast_lane and live is not None:
            self.lane = FastLane(
                live, self.destinations, self._note_frame, self.clock, timestamp_offset_ms=self._offset_ms
            )
        self.on_change()

    async def on_lost(self, session: PublisherSession) -> None:
        """An encoder connection has ended. If it was publishing (no deleteStream), its encoder was lost
        mid-stream: hold the broadcast with the slate, or end it where there is no slate."""
        if self._live is not session:
            return
        if not session.publishing:  # it stopped cleanly (deleteStream) just before the connection ended
            await self.end_stream(session)
            return
        self.settle()
        self.lane = None
        session.publishing = False
        self._live = None
        self.ingress.stream_ended()
        if self._closing:  # the agent is stopping and closed the connection itself: nothing to hold for
            return
        protection = self.protection
        if protection.hold is not None:  # the encoder that took over was lost before its first keyframe
            protection.hold.switch = None
            log.warning("relay: the returning encoder was lost before its first keyframe; the slate goes on")
            return
        slate = await protection.slate_for(self.headers)
        if self._closing:
            return
        if slate is None or self._live is not None:
            why = protection.note() or "no slate"
            log.warning("relay: the encoder was lost mid-stream; %s: ending the stream", why)
            await self._end_broadcast()
            return
        ingress = self.ingress
        start_ms = protection.continue_at_ms(
            slate, [ingress.last_video_ts_ms, ingress.last_audio_ts_ms], ingress.latest_display_ms
        )
        task = protection.start(slate, start_ms, self._send_slate, self._run_hold)
        self._tasks.add(task)  # cancelled by close()
        task.add_done_callback(self._tasks.discard)
        log.warning(
            "relay: the encoder was lost mid-stream: holding the broadcast with the slate (%s) for up to %g s",
            slate.shape.describe(),
            self.settings.hold_s,
        )
        self.on_change()

    async def _run_hold(self, hold: Hold) -> None:
        await hold.run()  # cancelled when an encoder takes over, or when the relay closes
        if self.protection.hold is not hold:
            return
        self.protection.finish()
        pending = self._live
        if pending is not None:  # back, but no keyframe within the grace: its stream has nowhere to go
            pending.publishing = False
            self._live = None
            self.ingress.stream_ended()
        log.warning("relay: no encoder came back within relay.hold_s = %g s: ending the stream", self.settings.hold_s)
        await self._end_broadcast()
        self.on_change()

    def settle(self) -> None:
        """Note the frames the fast lane forwarded (fast_lane.py): before anything reads the relay's figures."""
        lane = self.lane
        if lane is not None:
            lane.settle()

    async def end_stream(self, session: PublisherSession) -> None:
        """The encoder stopped cleanly (deleteStream): the broadcast ends at once, held or not."""
        if self._live is not session:
            return
        session.publishing = False
        if self.protection.finish() is not None:
            self.on_change()
        await self._end_broadcast()

    async def _end_broadcast(self) -> None:
        self.settle()
        self.lane = None
        self._offset_ms = 0
        self.ingress.stream_ended()
        try:
            await asyncio.gather(*(destination.end_stream() for destination in self.destinations))
        finally:
            self._live = None
            self._slot.release()

"""One encoder's connection to the relay, as an asyncio Protocol: bytes are parsed and frames forwarded right
in `data_received`, in the same event-loop step as the read.

Why not a StreamReader and a task: at 6 Mbit/s an encoder's frames arrive one read each, and a reader task
costs a wake-up (a future, a task step, a second loop iteration and epoll_wait) and a buffer copy per read;
that was a large part of the relay's CPU beside nginx-rtmp's. Here only what must wait (deciding on a
publish, finishing a stream, a full send buffer) leaves the fast path: reading pauses, a task does the
waiting, and reading resumes. The protocol work stays in `publisher.py` (sans-I/O); the relay's decisions in
`relay.py`, reached through `LinkOwner`, the few calls a connection makes (the relay implements it; this
module does not know the relay). Malformed input, a handshake that never completes or an encoder that goes silent closes this
connection with a log line (rate-limited per peer address, `peer_log.py`), and nothing else.

Until it publishes, a connection is anybody's: it reads into a small buffer and may hold little
(`publisher.limits_before_publish`), and its handshake has a deadline counted from the connection, not from
its last byte. The read buffer grows, and the bounds rise to `relay.max_frame_bytes`, once it publishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol, cast

from agent.errors import ProtocolError
from agent.relay.fast_lane import FastLane
from agent.relay.frames import Frame
from agent.relay.peer_log import PeerLog
from agent.relay.publisher import PublisherEvent, PublisherSession, PublishRequested, PublishStopped
from agent.relay.read_batching import ReadBatching
from agent.relay.settings import RelaySettings
from agent.rtmp.chunks import ReadLimits

log = logging.getLogger("agent.relay.relay")  # the relay's log lines, as before this module existed

READ_BUFFER_BYTES: Final = 256 * 1024  # asyncio's own largest read; a 6 Mbit/s keyframe fits in one
# Before publishing: a handshake packet or a command at a time (2,000 idle connections held 437 MB with
# 256 KiB each).
SMALL_READ_BUFFER_BYTES: Final = 16 * 1024


def stream_limits(settings: RelaySettings) -> ReadLimits:
    """What a publishing encoder's connection may make the relay hold (the `relay.max_*` settings)."""
    return ReadLimits(
        max_message_size=settings.max_frame_bytes,
        max_command_size=settings.max_data_message_bytes,
        max_pending_bytes=2 * settings.max_frame_bytes + settings.max_data_message_bytes,
    )


class LinkOwner(Protocol):
    """What an encoder connection needs from the relay (relay.py's `Relay` implements it)."""

    settings: RelaySettings
    clock: Callable[[], float]
    peer_log: PeerLog

    @property
    def lane(self) -> FastLane | None:
        """The live stream's fast lane, if any: a link whose session it serves forwards through it."""
        ...

    def settle(self) -> None: ...

    def on_frame(self, frame: Frame) -> None: ...

    async def on_publish(self, session: PublisherSession, request: PublishRequested, where: str) -> None: ...

    async def end_stream(self, session: PublisherSession) -> None:
        """The encoder stopped cleanly (deleteStream / closeStream)."""
        ...

    async def on_lost(self, session: PublisherSession) -> None:
        """The connection has ended (after a clean stop, or without one: the encoder was lost)."""
        ...

    def link_opened(self, link: EncoderLink) -> None: ...

    def link_closed(self, link: EncoderLink) -> None: ...

    def spawn_handler(self, coroutine: Coroutine[Any, Any, None], name: str) -> None: ...

    def connection_dropped(self) -> None:
        """Counts a connection closed for bad input or silence."""
        ...


class EncoderLink(asyncio.BufferedProtocol):
    """One encoder connection. `closed` completes when the connection is gone and the stream (if it was
    the live one) has been ended; the relay waits for it on shutdown.

    A BufferedProtocol: the transport reads into one buffer kept for the connection's life, where the
    chunks are parsed (frames are copied out of it), instead of allocating a new bytes object the size of
    asyncio's largest read (256 kB) for every read and shrinking it."""

    def __init__(self, relay: LinkOwner) -> None:
        self._relay = relay
        self._loop = asyncio.get_running_loop()
        self.session = PublisherSession(clock=relay.clock, stream_limits=stream_limits(relay.settings))
        self.transport: asyncio.Transport | None = None
        self.where = "an encoder"
        self.peer_host = "an encoder"  # the address its log lines are rate-limited by
        self._silence: _SilenceWatch | None = None
        self._waiting: asyncio.Task[None] | None = None  # publish decision / stream end in progress
        self._backlog: list[PublisherEvent] = []
        self._writing_paused = False
        self._answer_timer: asyncio.TimerHandle | None = None
        self._lost = False
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._read_view = memoryview(bytearray(SMALL_READ_BUFFER_BYTES))
        self._batching: ReadBatching | None = None  # the socket's low-water mark while the stream is live

    @property
    def read_mark_bytes(self) -> int:
        """The socket's receive low-water mark the relay set: how much must arrive before it reads."""
        return 1 if self._batching is None else self._batching.mark_bytes

    # ---------------------------------------------------------------------------------- asyncio's calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.where, self.peer_host = f"{peer[0]}:{peer[1]}", str(peer[0])
        self._silence = _SilenceWatch(self._relay.settings, self.session, self.transport)
        self._batching = ReadBatching(
            transport.get_extra_info("socket"), self._relay.settings.read_batch_ms / 1000, self._loop
        )
        self._relay.link_opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self._read_view
        if (len(view) == READ_BUFFER_BYTES) is not self.session.publishing:  # it began or stopped publishing
            view = self._read_view = memoryview(
                bytearray(READ_BUFFER_BYTES if self.session.publishing else SMALL_READ_BUFFER_BYTES)
            )
        return view

    def buffer_updated(self, nbytes: int) -> None:
        lane = self._relay.lane
        if lane is None or lane.session is not self.session or self._waiting is not None:
            self.data_received(self._read_view[:nbytes])
            return
        # The live stream's steady state (fast_lane.py): media forwarded here, anything else as below.
        now_s = self._loop.time()
        if self._silence is not None:
            self._silence.last_data_s = now_s
        try:
            rest = lane.forward(self._read_view[:nbytes])
        except ProtocolError as exc:
            self._drop(str(exc))
            return
        batching = self._batching
        if batching is not None and not rest:  # a frame's worth per wake-up (read_batching.py)
            batching.after_read(nbytes, now_s)
        elif batching is not None:  # a command or a header came: what follows it is read as it comes
            batching.lower()
        if rest:
            self._relay.settle()
            try:
                self.session.take_messages(rest)
            except ProtocolError as exc:  # a command or data message past its bounds, or malformed
                self._drop(str(exc))
                return
            self._pump()
        elif lane.answer_due:  # an Acknowledgement fell due
            self._send_answers()

    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes from the encoder (`buffer_updated` passes a view of the read buffer: nothing may keep it)."""
        if self._silence is not None:
            self._silence.last_data_s = self._loop.time()  # one store per read, no timer per read
        if self._batching is not None:
            self._batching.stop()  # off the live stream's lane: every message read as it comes
        self._relay.settle()  # frames the fast lane forwarded come first, for the classifier too
        try:
            self.session.receive_data(data)
        except ProtocolError as exc:
            self._drop(str(exc))
            return
        if self._waiting is None:  # else the waiting task takes the new events when it is done
            self._pump()

    def eof_received(self) -> bool:
        return False  # close our end too

    def pause_writing(self) -> None:
        """The encoder takes none of our answers: read nothing more until it does, for idle_timeout_s."""
        self._writing_paused = True
        self._pause_reading()
        self._answer_timer = self._loop.call_later(self._relay.settings.idle_timeout_s, self._answers_timed_out)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None
        if self._waiting is None:
            self._resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._batching is not None:
            self._batching.close()
        if self._answer_timer is not None:
            self._answer_timer.cancel()
        silence = self._silence
        if silence is not None:
            silence.stop()
            if silence.expired is not None:
                self._relay.connection_dropped()
                what, limit = silence.expired
                self._relay.peer_log.warning(
                    self.peer_host,
                    "relay: closing the connection from %s: it did not %s within %g s",
                    self.where,
                    what,
                    limit,
                )
        if exc is not None and not isinstance(exc, ProtocolError):
            self._relay.peer_log.line(
                logging.INFO, self.peer_host, "relay: connection from %s lost: %s", self.where, exc
            )
        self._relay.spawn_handler(self._finish(), "relay-connection-end")

    # ------------------------------------------------------------------------------------- internals

    def _pump(self) -> None:
        """Handle the session's events: frames right here; anything that must wait goes to a task."""
        session = self.session
        on_frame = self._relay.on_frame
        while events := session.events():
            for index, event in enumerate(events):
                if isinstance(event, Frame):
                    on_frame(event)
                elif isinstance(event, PublishRequested | PublishStopped):
                    self._backlog = events[index:]
                    self._pause_reading()
                    self._waiting = self._loop.create_task(self._wait_and_go_on(), name="relay-connection-wait")
                    self._send_answers()
                    return
        self._send_answers()

    async def _wait_and_go_on(self) -> None:
        try:
            while self._backlog:
                events, self._backlog = self._backlog, []
                for event in events:
                    if self._lost:
                        return
                    if isinstance(event, Frame):
                        self._relay.on_frame(event)
                    elif isinstance(event, PublishRequested):
                        await self._relay.on_publish(self.session, event, self.where)
                    elif isinstance(event, PublishStopped):
                        await self._relay.end_stream(self.session)
                self._backlog = self.session.events()
            self._send_answers()
        finally:
            self._waiting = None
            if not self._lost and not self._writing_paused:
                self._resume_reading()

    def _send_answers(self) -> None:
        out = self.session.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def _answers_timed_out(self) -> None:
        self._answer_timer = None
        self._relay.connection_dropped()
        self._relay.peer_log.warning(
            self.peer_host, "relay: closing the connection from %s: it took none of our answers", self.where
        )
        if self.transport is not None:
            self.transport.abort()

    def _drop(self, reason: str) -> None:
        self._relay.connection_dropped()
        self._relay.peer_log.warning(self.peer_host, "relay: closing the connection from %s: %s", self.where, reason)
        if self.transport is not None:
            self.transport.close()

    def evict(self, reason: str) -> None:
        """Close a connection that has not published, to make room (relay.max_connections)."""
        self._relay.connection_dropped()
        self._relay.peer_log.warning(self.peer_host, "relay: closing the connection from %s: %s", self.where, reason)
        if self.transport is not None:
            self.transport.abort()

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and self.transport.is_reading():
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and not self.transport.is_reading():
            self.transport.resume_reading()

    async def _finish(self) -> None:
        try:
            waiting = self._waiting
            if waiting is not None:
                await asyncio.wait({waiting})
            await self._relay.on_lost(self.session)  # if it was the live stream: held or ended
        finally:
            self._relay.link_closed(self)
            if not self.closed.done():
                self.closed.set_result(None)


class _SilenceWatch:
    """Closes a connection whose handshake is not done `handshake_timeout_s` after it opened (a deadline: a
    byte every few seconds does not extend it), or whose encoder then sends nothing for `idle_timeout_s`.
    One task per connection: during the handshake it wakes about once a second (the limit changes when it
    completes); after, only when the limit could have passed, so a live stream costs one wake-up per
    `idle_timeout_s`, not one a second."""

    def __init__(self, settings: RelaySettings, session: PublisherSession, transport: asyncio.Transport) -> None:
        self._settings = settings
        self._session = session
        self._transport = transport
        self.opened_s = self.last_data_s = asyncio.get_running_loop().time()
        self.expired: tuple[str, float] | None = None
        self._task: asyncio.Task[Any] = asyncio.create_task(self._watch(), name="relay-silence-watch")

    def _limit(self) -> tuple[str, float]:
        if not self._session.handshake_complete:
            return "finish the RTMP handshake", self._settings.handshake_timeout_s
        return "send anything", self._settings.idle_timeout_s

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            what, limit = self._limit()
            since = self.last_data_s if self._session.handshake_complete else self.opened_s
            silent_s = loop.time() - since
            if silent_s > limit:
                self.expired = (what, limit)
                self._transport.abort()  # connection_lost follows
                return
            wait_s = limit - silent_s if self._session.handshake_complete else min(limit - silent_s, 1.0)
            await asyncio.sleep(wait_s + 0.01)

    def stop(self) -> None:
        self._task.cancel()

"""The relay's asyncio wiring: listen for encoders, run one publisher session per connection, fan frames out.

One stream at a time (a second encoder publishing while one is live is refused with
NetStream.Publish.BadName, as nginx-rtmp refuses it). Each connection is its own task: malformed or
hostile input, a handshake that never completes or an encoder that goes silent closes that connection
with a log line, and nothing else. The protocol work is in `publisher.py`; the sending in `destination.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from agent.errors import ProtocolError, SourceUnavailable
from agent.redact import register_secret
from agent.relay.access import ingest_connector, publish_key_matches
from agent.relay.destination import Destination, PublisherFactory
from agent.relay.failover import Resilience, destination_names
from agent.relay.frames import Frame, HeaderCache
from agent.relay.ingress import IngressStats
from agent.relay.publisher import PublisherSession, PublishRequested, PublishStopped
from agent.relay.queue import QueueLimits
from agent.relay.settings import RelaySettings

log = logging.getLogger(__name__)

READ_SIZE: Final = 256 * 1024
SLOT_WAIT_S: Final = 5.0
# Registered secrets are redacted wherever they appear: only a key long enough to be a platform's key is
# registered, so "test" or "obs" typed into an encoder does not blank that word out of every log line.
SECRET_LOOKING_KEY_LENGTH: Final = 16  # a new publish waits this long for the previous stream to finish sending


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
    ) -> None:
        self.settings = settings
        self.clock = clock
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
        groups = ([ingest_urls] if ingest_urls else []) + [[url] for url in settings.destinations]
        names = destination_names(groups)
        self.destinations = [
            Destination(
                urls,
                self.headers,
                limits=limits,
                chunk_size=settings.chunk_size,
                timeout_s=settings.ingest_timeout_s,
                finish_timeout_s=settings.finish_timeout_s,
                connect=connect,
                clock=clock,
                resilience=resilience,
                name=name,
            )
            for urls, name in zip(groups, names, strict=True)
        ]
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Connection handlers are never cancelled: on Python 3.11 asyncio logs a cancelled
        # client_connected_cb as an unhandled error. close() ends their connections instead.
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._slot = asyncio.Lock()
        self._live: PublisherSession | None = None
        self.port: int | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        host, port = self.settings.host, self.settings.port
        try:
            self._server = await asyncio.start_server(self._handle, host, port, limit=READ_SIZE)
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
            self._spawn(destination.run(), f"relay-destination:{destination.name}")
        log.info("relay listening on %s:%s", host, self.port)

    async def close(self) -> None:
        """Stop listening, stop forwarding, close every encoder connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()  # the destinations; connection handlers are not in here (see _handle)
        for writer in list(self._writers):
            writer.transport.abort()  # the handlers see the connection end and finish on their own
        pending = self._tasks | self._handlers
        if pending:
            await asyncio.wait(pending, timeout=5)
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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "an encoder"
        session = PublisherSession(clock=self.clock)
        silence = _SilenceWatch(self.settings, session, writer)
        try:
            await self._serve(session, reader, writer, where, silence)
            if silence.expired is not None:
                self.ingress.connections_dropped_total += 1
                what, limit = silence.expired
                log.warning("relay: closing the connection from %s: it did not %s within %g s", where, what, limit)
        except ProtocolError as exc:
            self.ingress.connections_dropped_total += 1
            log.warning("relay: closing the connection from %s: %s", where, exc)
        except TimeoutError:
            self.ingress.connections_dropped_total += 1
            log.warning("relay: closing the connection from %s: it took none of our answers", where)
        except (ConnectionError, OSError) as exc:
            log.info("relay: connection from %s lost: %s", where, exc)
        finally:
            silence.stop()
            if self._live is session:
                await self._end_stream(session)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await writer.wait_closed()

    async def _serve(
        self,
        session: PublisherSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
        silence: _SilenceWatch,
    ) -> None:
        loop = asyncio.get_running_loop()
        while data := await reader.read(READ_SIZE):
            silence.last_data_s = loop.time()  # one store per read: no timer per read (it showed in profiles)
            session.receive_data(data)
            while events := session.events():
                for event in events:
                    if isinstance(event, Frame):
                        self._on_frame(event)
                    elif isinstance(event, PublishRequested):
                        await self._on_publish(session, event, where)
                    elif isinstance(event, PublishStopped):
                        await self._end_stream(session)
            out = session.data_to_send()
            if out:
                writer.write(out)
                async with asyncio.timeout(self.settings.idle_timeout_s):
                    await writer.drain()

    async def _on_publish(self, session: PublisherSession, request: PublishRequested, where: str) -> None:
        key = request.stream_name.partition("?")[0]
        if len(key) >= SECRET_LOOKING_KEY_LENGTH:
            register_secret(key)  # it may be the real key: never show it (short words like "live" are not keys)
        if not publish_key_matches(self.settings, request.stream_name):
            self.ingress.publishers_refused_total += 1
            log.warning("relay: refused a publisher from %s: wrong stream key (relay.publish_key)", where)
            session.reject_publish(description="Wrong stream key")
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
        self.ingress.stream_started(request.encoder)
        for destination in self.destinations:
            destination.start_stream()
        session.accept_publish()
        log.info("relay: %s (%s) is publishing", where, request.encoder or "unknown encoder")

    def _on_frame(self, frame: Frame) -> None:
        self.headers.update(frame)
        self.ingress.record(frame)
        for destination in self.destinations:
            destination.offer(frame)

    async def _end_stream(self, session: PublisherSession) -> None:
        if self._live is not session:
            return
        session.publishing = False
        self.ingress.stream_ended()
        try:
            await asyncio.gather(*(destination.end_stream() for destination in self.destinations))
        finally:
            self._live = None
            self._slot.release()


class _SilenceWatch:
    """Closes a connection whose encoder sends nothing for too long: `handshake_timeout_s` before the
    handshake completes, `idle_timeout_s` after. One task per connection, waking about once a second."""

    def __init__(self, settings: RelaySettings, session: PublisherSession, writer: asyncio.StreamWriter) -> None:
        self._settings = settings
        self._session = session
        self._writer = writer
        self.last_data_s = asyncio.get_running_loop().time()
        self.expired: tuple[str, float] | None = None
        self._task = asyncio.create_task(self._watch(), name="relay-silence-watch")

    def _limit(self) -> tuple[str, float]:
        if not self._session.handshake_complete:
            return "finish the RTMP handshake", self._settings.handshake_timeout_s
        return "send anything", self._settings.idle_timeout_s

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            what, limit = self._limit()
            silent_s = loop.time() - self.last_data_s
            if silent_s > limit:
                self.expired = (what, limit)
                self._writer.transport.abort()  # the reader sees the end of the stream
                return
            await asyncio.sleep(min(limit - silent_s, 1.0) + 0.01)

    def stop(self) -> None:
        self._task.cancel()

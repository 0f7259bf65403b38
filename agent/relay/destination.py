"""One ingest the relay forwards to: its own queue, its own RTMP publisher connection, its own counters.

While a stream is live, frames are offered to every destination (`offer` never blocks, so a slow ingest
never holds up the encoder or another destination); each destination's forwarding task pops its queue and
writes the bytes exactly as the encoder sent them. A new connection first gets the cached metadata and
sequence headers (unless they are still queued). The kernel's own send buffer is kept small
(TCP_NOTSENT_LOWAT) so congestion shows up in our queue, where the drop policy can act on it.

Reconnecting, failing over to backups and several destinations (issue 11) build on this: `urls` is the
ordered list of ingests to try, `connect` is swappable for tests, and `run` is the one loop that owns a
connection's life.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Literal

from agent.errors import ProtocolError
from agent.models import TcpInfo
from agent.net.tcpinfo import read_tcp_info
from agent.redact import redact
from agent.relay.frames import Frame, HeaderCache
from agent.relay.queue import MediaQueue, QueueLimits
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher, parse_rtmp_url
from agent.rtmp.connection import CSID_AUDIO, CSID_STREAM, CSID_VIDEO
from agent.rtmp.errors import IngestConnectionLost, IngestError, IngestRejected

log = logging.getLogger(__name__)

TCP_NOTSENT_LOWAT: Final = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
NOTSENT_LOWAT_BYTES: Final = 128 * 1024
WRITE_BUFFER_HIGH_BYTES: Final = 64 * 1024  # asyncio's default high-water mark: drain() waits below it
LATENCY_SAMPLES: Final = 4096
MAX_BACKOFF_S: Final = 10.0
LOSS_CHECK_S: Final = 0.5

DestinationState = Literal["idle", "connecting", "live", "retrying", "rejected"]
PublisherFactory = Callable[[str], RtmpPublisher]


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
    ) -> None:
        if not urls:
            raise ValueError("a destination needs at least one ingest URL")
        self.urls = urls
        parsed = parse_rtmp_url(urls[0])
        self.name = f"{parsed.host}:{parsed.port}"  # never the key or the full URL
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
        self._sent_this_stream = False  # some frame of this stream already went out (on an earlier connection)
        self._finished = asyncio.Event()
        self._finished.set()
        # Counters (monotonic over the agent's life).
        self.frames_out_total = 0
        self.bytes_out_total = 0
        self.connects_total = 0
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    # ---------------------------------------------------------------------------------- the stream

    def start_stream(self) -> None:
        self.queue.clear()
        self._sent_this_stream = False
        self._streaming = True
        self._finished.clear()
        self._wake.set()

    def offer(self, frame: Frame) -> None:
        """Send a frame now if nothing waits and the link takes it, else queue it (the drop policy may then
        drop it or older ones). Never blocks."""
        if not self._streaming:
            return
        publisher = self.publisher
        if (
            self._forwarding
            and publisher is not None
            and publisher.publishing
            and not self.queue
            and publisher.write_buffer_size <= WRITE_BUFFER_HIGH_BYTES
        ):
            # The fast path: the common, uncongested case costs no queueing and no task switch.
            self._send_now(publisher, frame)
            return
        self.queue.push(frame)
        self._wake.set()

    async def end_stream(self) -> None:
        """The encoder stopped: send what is queued (within `finish_timeout_s`), unpublish, disconnect."""
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
        """Until cancelled: for each stream, connect and forward; on failure retry with backoff while it lasts."""
        try:
            await self._run()
        finally:
            self.state = "idle"
            self._finished.set()  # nobody waits for a stream to finish sending once this task is gone

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._streaming:
                self.state = "idle"
                self._finished.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._session(self.urls[0])
                failures = 0
            except IngestRejected as exc:
                self._failed(exc, "rejected")
                failures += 1
            except (IngestError, ProtocolError, OSError) as exc:
                self._failed(exc, "retrying")
                failures += 1
            if self._streaming and failures:
                await self._sleep_unless_ended(min(2.0 ** (failures - 1), MAX_BACKOFF_S))

    def _failed(self, exc: BaseException, state: DestinationState) -> None:
        self.state = state
        self.last_error = redact(str(exc))
        log.warning("ingest %s: %s", self.name, self.last_error)

    async def _sleep_unless_ended(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                while self._streaming:
                    self._wake.clear()
                    await self._wake.wait()

    async def _session(self, url: str) -> None:
        self.state = "connecting"
        publisher = self._connect(url)
        try:
            await publisher.start()
            self.publisher = publisher
            self.connects_total += 1
            self.last_error = None
            self.state = "live"
            self._keep_kernel_buffer_small(publisher)
            log.info("relay forwarding to %s", publisher.url.redacted())
            if self._sent_this_stream:
                self.queue.restart_at_keyframe()  # a new connection mid-stream must start decodable
            for frame in self.headers.frames():
                if not self.queue.contains(frame):
                    self._write(publisher, frame)
            self._forwarding = True
            await self._forward(publisher)
        finally:
            self._forwarding = False
            self.publisher = None
            await publisher.close()

    async def _forward(self, publisher: RtmpPublisher) -> None:
        queue = self.queue
        deadline: float | None = None
        while True:
            # Clear before looking: a frame offered while we were away has set it again, so none is missed
            # (clearing after an await here once left frames waiting ~30 ms for the next one).
            self._wake.clear()
            if not publisher.publishing:
                raise IngestConnectionLost(f"the ingest at {self.name} closed the connection")
            frame = queue.pop()
            if frame is None:
                if not self._streaming:
                    await publisher.drain()
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LOSS_CHECK_S):  # a lost connection wakes nobody: look now and then
                        await self._wake.wait()
                continue
            self._send_now(publisher, frame)
            if not self._streaming:
                deadline = deadline or self._clock() + self.finish_timeout_s
                if self._clock() > deadline:
                    log.warning("ingest %s: gave up sending the last %d queued frames", self.name, len(queue))
                    queue.clear()
                    return
            if publisher.write_buffer_size > WRITE_BUFFER_HIGH_BYTES:
                await publisher.drain()

    def _send_now(self, publisher: RtmpPublisher, frame: Frame) -> None:
        self._write(publisher, frame)
        publisher.flush()
        self.latencies_s.append(self._clock() - frame.received_at_s)

    def _write(self, publisher: RtmpPublisher, frame: Frame) -> None:
        stream_id = publisher.stream_id or 1
        csid = CSID_VIDEO if frame.type_id == m.VIDEO else CSID_AUDIO if frame.type_id == m.AUDIO else CSID_STREAM
        publisher.connection.send_message(csid, frame.timestamp_ms, frame.type_id, stream_id, frame.payload)
        self._sent_this_stream = True
        self.frames_out_total += 1
        self.bytes_out_total += frame.size_bytes

    @staticmethod
    def _keep_kernel_buffer_small(publisher: RtmpPublisher) -> None:
        sock = publisher.socket
        if sock is None or not hasattr(socket, "IPPROTO_TCP"):
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES)

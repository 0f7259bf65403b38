"""An asyncio RTMP publisher over the sans-I/O core: connect, publish, send media, count what the ingest took.

It does what OBS does on the wire (connect, releaseStream, FCPublish, createStream, publish, then
@setDataFrame and media), waits for NetStream.Publish.Start, and turns every failure into an
`agent.rtmp.errors` exception that names the next step. Every network await has a deadline. It is a
publisher only: playing streams back is not something streamhealth needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Final, TypeVar

from agent.errors import ProtocolError
from agent.rtmp import messages as m
from agent.rtmp.connection import Role, RtmpConnection
from agent.rtmp.errors import IngestRejected, IngestTimeout
from agent.rtmp.pacing import publish_synthetic
from agent.rtmp.publish_failures import connect_failure, describe_status, lost_error, scrub, timeout_message
from agent.rtmp.synthetic import MediaFrame
from agent.rtmp.url import DEFAULT_PORTS, RtmpUrl, parse_rtmp_url

__all__ = ["DEFAULT_PORTS", "RtmpPublisher", "RtmpUrl", "parse_rtmp_url", "publish_synthetic"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

FLASH_VERSION: Final = "FMLE/3.0 (compatible; FMSc/1.0)"  # what OBS sends; some ingests check for FMLE
READ_SIZE: Final = 65536


class RtmpPublisher:
    """Publishes one stream to an ingest. Use as `async with RtmpPublisher(url) as publisher:`.

    `bytes_sent` counts chunk-stream bytes after the handshake, the same thing the ingest's RTMP
    Acknowledgements count (`peer_acknowledged_bytes`). `socket` is the connected socket, e.g. for
    reading Linux TCP_INFO.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
        chunk_size: int = 4096,
        ack_window_bytes: int | None = None,
        ack_history_size: int = 4096,
    ) -> None:
        self.url = parse_rtmp_url(url)
        self.timeout_s = timeout_s
        self.chunk_size = chunk_size
        self.ack_window_bytes = ack_window_bytes  # ask the ingest to acknowledge every N bytes (nginx honours it)
        self._ssl_context = ssl_context
        self.connection = RtmpConnection(Role.CLIENT)  # the protocol state (read it; the publisher drives it)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.transport: asyncio.WriteTransport | None = None  # the writer's, once connected: for the fast path
        self._read_task: asyncio.Task[None] | None = None
        self._handshake_done = asyncio.Event()
        self._results: dict[float, asyncio.Future[m.Command]] = {}
        self._statuses: asyncio.Queue[m.Command] = asyncio.Queue()
        self._lost: BaseException | None = None
        self._lost_event = asyncio.Event()
        self._stage = "connecting"
        self._next_transaction = 1.0
        self._ack_last = 0
        self._ack_wraps = 0
        self.stream_id: int | None = None
        self.peer_acknowledged_bytes: int | None = None
        self.ack_history: deque[tuple[float, int]] = deque(maxlen=ack_history_size)  # (monotonic, acked bytes)
        self.server_info: dict[str, Any] = {}
        self.publishing = False

    # ------------------------------------------------------------------------------------ properties

    @property
    def bytes_sent(self) -> int:
        return self.connection.bytes_sent

    @property
    def bytes_received(self) -> int:
        return self.connection.bytes_received

    @property
    def write_buffer_size(self) -> int:
        """Bytes handed to asyncio but not yet to the kernel."""
        if self._writer is None or self._writer.transport.is_closing():
            return 0
        return self._writer.transport.get_write_buffer_size()

    @property
    def socket(self) -> Any:
        """The connected socket (asyncio's TransportSocket: has fileno() and getsockopt()), or None."""
        return None if self._writer is None else self._writer.get_extra_info("socket")

    async def wait_lost(self) -> None:
        """Returns once the connection is gone (the ingest closed it, or it failed); at once if it is."""
        await self._lost_event.wait()

    # ----------------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> RtmpPublisher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect, handshake and publish; returns once the ingest said NetStream.Publish.Start."""
        try:
            await self._open()
            await self._publish()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError | TimeoutError | IngestTimeout):
                self.abort()  # a silent or cut link: a polite close would wait (2 s) for answers that never come
            await self.close()
            raise

    async def _open(self) -> None:
        url = self.url
        where = f"{url.host}:{url.port}"
        context: ssl.SSLContext | None = None
        if url.tls:
            context = self._ssl_context or ssl.create_default_context()
        log.info("connecting to %s", url.redacted())
        try:
            async with asyncio.timeout(self.timeout_s):
                self._reader, self._writer = await asyncio.open_connection(
                    url.host, url.port, ssl=context, server_hostname=url.host if context else None, limit=READ_SIZE
                )
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            raise connect_failure(url, exc, self.timeout_s) from exc
        self.transport = self._writer.transport
        self._read_task = asyncio.create_task(self._read_loop(), name="rtmp-publisher-read")
        self._stage = "handshake"
        self._flush()
        await self._wait(
            self._handshake_done.wait(),
            f"the ingest at {where} did not complete the RTMP handshake within {self.timeout_s:g} s: "
            f"is {url.scheme}://{where} an {url.scheme.upper()} server?",
        )

    async def _publish(self) -> None:
        url, conn = self.url, self.connection
        conn.send_set_chunk_size(self.chunk_size)
        self._stage = "connect"
        result = await self._call(
            "connect",
            {
                "app": url.app,
                "type": "nonprivate",
                "flashVer": FLASH_VERSION,
                "swfUrl": url.tc_url,
                "tcUrl": url.tc_url,
            },
        )
        if result.name == "_error":
            raise IngestRejected(
                f"the ingest refused application '{url.app}' ({self._describe(result)}): "
                "check the application part of ingest.primary (rtmp://host/APP/key)"
            )
        self.server_info = dict(result.info)
        if self.ack_window_bytes:
            conn.send_window_ack_size(self.ack_window_bytes)
        self._stage = "createStream"
        self._command("releaseStream", None, url.stream_key)
        self._command("FCPublish", None, url.stream_key)
        result = await self._call("createStream", None)
        stream_id = result.arguments[0] if result.arguments else None
        if result.name == "_error" or not isinstance(stream_id, float):
            raise IngestRejected(f"the ingest refused to create a stream ({self._describe(result)})")
        self.stream_id = int(stream_id)
        self._stage = "publish"
        conn.send_command("publish", self._transaction(), None, url.stream_key, "live", stream_id=self.stream_id)
        self._flush()
        status: m.Command = await self._wait(self._publish_status(), self._timeout_message("publish"))
        if status.status_code != "NetStream.Publish.Start":
            raise IngestRejected(
                f"the ingest rejected the stream key ({self._describe(status)}): check the key in ingest.primary "
                "(and that nothing else is already streaming to it)"
            )
        if self._lost_event.is_set():  # it answered, then went: publishing on a lost connection would never end
            raise self._lost_error(self._lost)
        self._stage = "publishing"
        self.publishing = True
        log.info("publishing to %s", url.redacted())

    async def _publish_status(self) -> m.Command:
        while True:
            command = await self._statuses.get()
            if command.name == "_error" or command.status_code is None:
                return command
            level = command.info.get("level")
            if command.status_code.startswith("NetStream.Publish.") or level == "error":
                return command

    async def close(self) -> None:
        """Unpublish politely when we can, then close the connection. Never raises."""
        writer = self._writer
        if writer is not None and not writer.is_closing() and self._lost is None:
            with contextlib.suppress(RuntimeError):
                if self.publishing and self.stream_id is not None:
                    self._command("FCUnpublish", None, self.url.stream_key)
                    self.connection.send_command("deleteStream", self._transaction(), None, float(self.stream_id))
                    self._flush()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(min(self.timeout_s, 2.0)):
                    await writer.drain()
                    # Half-close and let the ingest close its side: closing with its last answers unread
                    # would reset the connection. TLS cannot half-close; there we just close.
                    if writer.can_write_eof() and self._read_task is not None and not self._read_task.done():
                        writer.write_eof()
                        await self._lost_event.wait()
        self.publishing = False
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                async with asyncio.timeout(min(self.timeout_s, 2.0)):
                    await writer.wait_closed()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_task
            self._read_task = None

    def abort(self) -> None:
        """Drop the connection at once, unsent bytes and all: a polite close would wait on a stalled link."""
        if self._writer is not None:
            self._writer.transport.abort()
        self.publishing = False

    # ----------------------------------------------------------------------------------------- media

    async def send_metadata(self, metadata: dict[str, Any]) -> None:
        self.connection.send_metadata(metadata, stream_id=self._require_stream())
        await self.drain()

    async def send_audio(self, timestamp_ms: int, payload: bytes) -> None:
        self.connection.send_audio(timestamp_ms, payload, stream_id=self._require_stream())
        await self.drain()

    async def send_video(self, timestamp_ms: int, payload: bytes) -> None:
        self.connection.send_video(timestamp_ms, payload, stream_id=self._require_stream())
        await self.drain()

    async def send_frame(self, frame: MediaFrame) -> None:
        if frame.kind == "video":
            await self.send_video(frame.timestamp_ms, frame.payload)
        else:
            await self.send_audio(frame.timestamp_ms, frame.payload)

    def flush(self) -> None:
        """Hand what the protocol produced to the transport without waiting (the relay writes, then drains
        only when the transport's buffer is full). The pieces go as they are: uvloop writes them with one
        writev, without joining a frame's payload into a new buffer first (asyncio's own loop joins them)."""
        pieces = self.connection.pieces_to_send()
        transport = self.transport  # straight to it: the stream writer adds a call and nothing else
        if pieces and transport is not None and not transport.is_closing():
            transport.writelines(pieces)

    async def drain(self) -> None:
        """Hand queued bytes to the kernel; raises IngestTimeout if the link takes none for `timeout_s`."""
        self._flush()
        assert self._writer is not None
        try:
            await self._wait(self._writer.drain(), self._timeout_message("sending"))
        except (ConnectionError, OSError) as exc:
            raise self._lost_error(exc) from exc

    def _require_stream(self) -> int:
        if not self.publishing or self.stream_id is None:
            raise self._lost_error(self._lost) if self._lost else RuntimeError("not publishing")
        return self.stream_id

    # --------------------------------------------------------------------------------------- plumbing

    def _transaction(self) -> float:
        transaction = self._next_transaction
        self._next_transaction += 1
        return transaction

    def _command(self, name: str, command_object: Any, *arguments: Any) -> float:
        transaction = self._transaction()
        self.connection.send_command(name, transaction, command_object, *arguments)
        self._flush()
        return transaction

    async def _call(self, name: str, command_object: Any, *arguments: Any) -> m.Command:
        transaction = self._transaction()
        future: asyncio.Future[m.Command] = asyncio.get_running_loop().create_future()
        self._results[transaction] = future
        self.connection.send_command(name, transaction, command_object, *arguments)
        self._flush()
        try:
            return await self._wait(future, self._timeout_message(name))
        finally:
            self._results.pop(transaction, None)

    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def _wait(self, awaitable: Awaitable[_T], timeout_message: str) -> _T:
        """Await with the deadline, and give up as soon as the connection is lost."""
        waiter = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost_event.wait())
        try:
            done, _ = await asyncio.wait({waiter, lost}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if waiter in done:
            result: _T = waiter.result()
            return result
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await waiter
        if lost in done:
            raise self._lost_error(self._lost)
        raise IngestTimeout(timeout_message)

    def _timeout_message(self, what: str) -> str:
        return timeout_message(self.url, what, self.timeout_s)

    def _describe(self, command: m.Command) -> str:
        return describe_status(self.url, command)

    def _scrub(self, text: str) -> str:
        return scrub(self.url, text)

    def _lost_error(self, cause: BaseException | None) -> Exception:
        return lost_error(self.url, self._stage, cause)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        cause: BaseException | None = None
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    cause = EOFError()
                    break
                self.connection.receive_data(data)
                if self.connection.handshake_complete:
                    self._handshake_done.set()
                for event in self.connection.events_received():
                    self._dispatch(event)
                self._flush()
        except ProtocolError as exc:
            cause = exc
            log.warning("dropping connection to %s: %s", self.url.redacted(), self._scrub(str(exc)))
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            cause = exc
        self._lost = cause
        self.publishing = False
        self._lost_event.set()

    def _dispatch(self, event: m.Event) -> None:
        if isinstance(event, m.Command):
            if event.name in ("_result", "_error"):
                future = self._results.get(event.transaction_id)
                if future is not None and not future.done():
                    future.set_result(event)
                elif event.name == "_error" and self._stage == "publish":
                    self._statuses.put_nowait(event)  # e.g. an _error answering publish itself
            elif event.name == "onStatus":
                log.info("ingest status: %s", self._describe(event))
                self._statuses.put_nowait(event)
                if self._stage == "publishing" and event.info.get("level") == "error":
                    log.warning("the ingest stopped the stream: %s", self._describe(event))
        elif isinstance(event, m.Acknowledgement):
            sequence = event.sequence_number
            if sequence < self._ack_last:
                self._ack_wraps += 1
            self._ack_last = sequence
            acknowledged = self._ack_wraps * 2**32 + sequence
            self.peer_acknowledged_bytes = acknowledged
            self.ack_history.append((time.monotonic(), acknowledged))

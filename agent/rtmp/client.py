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
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from agent.errors import ConfigError, ProtocolError
from agent.redact import MARK, redact, redact_url
from agent.rtmp import messages as m
from agent.rtmp.connection import Role, RtmpConnection
from agent.rtmp.errors import IngestConnectionLost, IngestRejected, IngestTimeout, IngestUnreachable
from agent.rtmp.synthetic import MediaFrame, SyntheticStream

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_PORTS: Final = {"rtmp": 1935, "rtmps": 443}
FLASH_VERSION: Final = "FMLE/3.0 (compatible; FMSc/1.0)"  # what OBS sends; some ingests check for FMLE
READ_SIZE: Final = 65536


@dataclass(frozen=True)
class RtmpUrl:
    """An ingest URL split the way encoders split it: the app is the first path segment, the rest is the key."""

    scheme: str
    host: str
    port: int
    app: str
    stream_key: str  # everything after the app, query string included (`key?bandwidthtest=true`)
    tc_url: str  # scheme://host[:port]/app, as sent in connect

    @property
    def tls(self) -> bool:
        return self.scheme == "rtmps"

    def redacted(self) -> str:
        return redact_url(f"{self.tc_url}/{self.stream_key}")


def parse_rtmp_url(url: str) -> RtmpUrl:
    """Split an `rtmp://` / `rtmps://` URL; raises ConfigError (with the key redacted) when it cannot be used."""
    shown = _shown_url(url)
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"{shown} is not an rtmp:// or rtmps:// URL: check ingest.primary")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ConfigError(f"{shown} has an invalid port: check ingest.primary") from exc
    if not parts.hostname:
        raise ConfigError(f"{shown} has no host: check ingest.primary")
    path = parts.path.lstrip("/")
    app, _, key = path.partition("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    if not app:
        raise ConfigError(f"{shown} has no application name (rtmp://host/APP/KEY): check ingest.primary")
    if not key or key.startswith("?"):
        raise ConfigError(f"{shown} has no stream key (rtmp://host/app/KEY): check ingest.primary")
    netloc = parts.netloc.rpartition("@")[2]
    return RtmpUrl(scheme, parts.hostname, port, app, key, f"{scheme}://{netloc}/{app}")


def _shown_url(url: str) -> str:
    """A URL fit for an error message even when it is malformed: everything after the app is redacted."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2]
    app, _, rest = parts.path.lstrip("/").partition("/")
    tail = f"/{MARK}" if rest or parts.query else ""
    return redact(f"{parts.scheme}://{host}/{app}{tail}" if app else f"{parts.scheme}://{host}")


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
        self._connection = RtmpConnection(Role.CLIENT)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
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
        return self._connection.bytes_sent

    @property
    def bytes_received(self) -> int:
        return self._connection.bytes_received

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

    @property
    def connection(self) -> RtmpConnection:
        return self._connection

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
        except BaseException:
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
        except TimeoutError as exc:
            raise IngestUnreachable(
                f"could not connect to the ingest at {where} within {self.timeout_s:g} s: "
                "check ingest.primary and your network"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise IngestUnreachable(
                f"the TLS certificate of {url.host} could not be verified ({exc.verify_message}): "
                "check the host in ingest.primary (rtmps:// needs the ingest's real name)"
            ) from exc
        except ssl.SSLError as exc:
            raise IngestUnreachable(
                f"TLS with the ingest at {where} failed ({exc.reason}): is it really rtmps:// on port {url.port}?"
            ) from exc
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise IngestUnreachable(
                f"could not connect to the ingest at {where}: {reason}: check ingest.primary and your network"
            ) from exc
        self._read_task = asyncio.create_task(self._read_loop(), name="rtmp-publisher-read")
        self._stage = "handshake"
        self._flush()
        await self._wait(
            self._handshake_done.wait(),
            f"the ingest at {where} did not complete the RTMP handshake within {self.timeout_s:g} s: "
            f"is {url.scheme}://{where} an {url.scheme.upper()} server?",
        )

    async def _publish(self) -> None:
        url, conn = self.url, self._connection
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
                    self._connection.send_command("deleteStream", self._transaction(), None, float(self.stream_id))
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

    # ----------------------------------------------------------------------------------------- media

    async def send_metadata(self, metadata: dict[str, Any]) -> None:
        self._connection.send_metadata(metadata, stream_id=self._require_stream())
        await self.drain()

    async def send_audio(self, timestamp_ms: int, payload: bytes) -> None:
        self._connection.send_audio(timestamp_ms, payload, stream_id=self._require_stream())
        await self.drain()

    async def send_video(self, timestamp_ms: int, payload: bytes) -> None:
        self._connection.send_video(timestamp_ms, payload, stream_id=self._require_stream())
        await self.drain()

    async def send_frame(self, frame: MediaFrame) -> None:
        if frame.kind == "video":
            await self.send_video(frame.timestamp_ms, frame.payload)
        else:
            await self.send_audio(frame.timestamp_ms, frame.payload)

    def flush(self) -> None:
        """Hand what the protocol produced to the transport without waiting (the relay writes, then drains
        only when the transport's buffer is full)."""
        self._flush()

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
        self._connection.send_command(name, transaction, command_object, *arguments)
        self._flush()
        return transaction

    async def _call(self, name: str, command_object: Any, *arguments: Any) -> m.Command:
        transaction = self._transaction()
        future: asyncio.Future[m.Command] = asyncio.get_running_loop().create_future()
        self._results[transaction] = future
        self._connection.send_command(name, transaction, command_object, *arguments)
        self._flush()
        try:
            return await self._wait(future, self._timeout_message(name))
        finally:
            self._results.pop(transaction, None)

    def _flush(self) -> None:
        data = self._connection.data_to_send()
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
        return (
            f"the ingest at {self.url.host}:{self.url.port} did not answer {what} within {self.timeout_s:g} s: "
            "it may be overloaded or the link may be down; try again or check ingest.primary"
        )

    def _describe(self, command: m.Command) -> str:
        info = command.info
        text = " ".join(str(part) for part in (info.get("code"), info.get("description")) if part) or command.name
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        key = self.url.stream_key
        for secret in (key, key.partition("?")[0]):
            if secret:
                text = text.replace(secret, MARK)
        return redact(text)

    def _lost_error(self, cause: BaseException | None) -> Exception:
        if isinstance(cause, ProtocolError):
            return ProtocolError(f"the ingest at {self.url.host}:{self.url.port} sent invalid RTMP: {cause}")
        reason = (
            "closed the connection"
            if cause is None or isinstance(cause, EOFError)
            else f"reset the connection ({cause})"
        )
        where = f"the ingest at {self.url.host}:{self.url.port}"
        stage = self._stage
        if stage == "connect":
            return IngestRejected(
                f"{where} {reason} when we connected to application '{self.url.app}': "
                "check the application part of ingest.primary (rtmp://host/APP/key)"
            )
        if stage == "publish":
            return IngestRejected(
                f"{where} {reason} when we published: it rejected the stream key; check ingest.primary "
                "(and that nothing else is already streaming to it)"
            )
        if stage == "handshake":
            return IngestConnectionLost(
                f"{where} {reason} during the RTMP handshake: is {self.url.scheme}://{self.url.host}:{self.url.port} "
                "an RTMP server (rtmps:// needs TLS, rtmp:// must not use it)?"
            )
        return IngestConnectionLost(f"{where} {reason} while {stage}: check your network and the ingest's status")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        cause: BaseException | None = None
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    cause = EOFError()
                    break
                self._connection.receive_data(data)
                if self._connection.handshake_complete:
                    self._handshake_done.set()
                for event in self._connection.events_received():
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


async def publish_synthetic(
    publisher: RtmpPublisher,
    stream: SyntheticStream,
    duration_s: float,
    *,
    send_headers: bool = True,
) -> None:
    """Send `stream` in real time for `duration_s` (metadata and sequence headers first, unless already sent).

    Frames go out when their timestamp is due; when the link is slower than the stream, `drain` blocks, the
    stream falls behind and is not caught up later: the call still returns after `duration_s`, which is what
    a bandwidth test needs. Call again to continue the same stream (e.g. after `stream.set_video_bitrate`)
    with `send_headers=False`.
    """
    if send_headers:
        await publisher.send_metadata(stream.metadata())
        for frame in stream.sequence_headers():
            await publisher.send_frame(frame)
    loop = asyncio.get_running_loop()
    first = stream.next_frame()
    # Anchor the clock so the stream's timeline continues from where it is.
    origin = loop.time() - first.timestamp_ms / 1000
    end = loop.time() + duration_s
    frame = first
    while True:
        due = origin + frame.timestamp_ms / 1000
        if due >= end or loop.time() >= end:  # the second when the link is slower than the stream
            stream.push_back(frame)
            return
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await publisher.send_frame(frame)
        frame = stream.next_frame()

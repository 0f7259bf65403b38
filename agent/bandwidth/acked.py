"""Bytes the far end acknowledged, summed over the test's own sockets (Linux TCP_INFO bytes_acked).

Counting bytes as they are written overstates upload while socket buffers fill and wobbles as they
grow; the kernel's acknowledged count is what actually crossed the link. Backends register each
socket they open; `total()` is read once per window. Where TCP_INFO is missing it reports None and
the backend falls back to counting written bytes (after the ramp-up, buffers are full either way).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

import httpcore
import httpx

from agent.net.tcpinfo import read_tcp_info, supported


class AckedSockets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self._last: dict[int, int] = {}

    def add(self, sock: Any) -> None:
        with self._lock:
            self._sockets.append(sock)

    def retire(self, sock: Any) -> None:
        """Take a last reading of a socket about to close, so its final acknowledgements count."""
        info = read_tcp_info(sock)
        if info is not None:
            with self._lock:
                self._last[id(sock)] = info.bytes_acked + (info.sacked_bytes or 0)

    def discard_unsent_on_close(self) -> None:
        """Make every socket's close drop what is still queued (SO_LINGER 0), not push it out for seconds.

        At the end of a test the send buffers of a saturated link hold seconds of data; left alone,
        the kernel keeps sending it after close and the next test (or the stream) competes with it.
        """
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            discard_unsent_on_close(sock)

    def abort_all(self) -> None:
        """Drop queued data and wake any thread blocked on these sockets (worker threads we cannot cancel)."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            discard_unsent_on_close(sock)
            with contextlib.suppress(OSError, ValueError):
                sock.shutdown(socket.SHUT_RDWR)

    def total(self) -> int | None:
        """Sum of bytes acked over every socket seen (closed ones keep their last reading)."""
        if not supported():
            return None
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            info = read_tcp_info(sock)
            if info is not None:
                # Counting SACKed bytes too keeps a loss recovery from showing as a dip then a burst.
                with self._lock:
                    self._last[id(sock)] = info.bytes_acked + (info.sacked_bytes or 0)
        with self._lock:
            return sum(self._last.values()) if self._last else None


def discard_unsent_on_close(sock: Any) -> None:
    with contextlib.suppress(OSError, ValueError):
        if sock.fileno() >= 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _RecordingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, remembering the socket of every connection it opens."""

    def __init__(self, sockets: AckedSockets) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.sockets = sockets

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self.inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        sock = stream.get_extra_info("socket")
        if sock is not None:
            self.sockets.add(sock)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def recording_transport(sockets: AckedSockets, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections' sockets land in `sockets` (plain HTTP/1.1, no proxy)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx has no public hook for the network backend; its pool is httpcore's, which has one.
    transport._pool = httpcore.AsyncConnectionPool(
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_RecordingBackend(sockets),
    )
    return transport

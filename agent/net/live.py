"""Live connections to ingest targets, so the network source can read their TCP_INFO.

Whoever holds a real connection to an ingest (the rtmp bandwidth test now, the relay later)
registers its socket under the target's "host:port" name while it is open; the network source then
reads the kernel's view of it instead of opening probe connections of its own.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from agent.net.sockstate import is_open


def target_name(host: str, port: int) -> str:
    """The one spelling of a target everywhere (samples, metrics, this registry): host:port, [v6]:port."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LiveConnections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[str, list[socket.socket]] = {}

    def add(self, target: str, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.setdefault(target, []).append(sock)

    def remove(self, target: str, sock: socket.socket) -> None:
        with self._lock:
            sockets = self._sockets.get(target, [])
            if sock in sockets:
                sockets.remove(sock)
            if not sockets:
                self._sockets.pop(target, None)

    @contextlib.contextmanager
    def registered(self, target: str, sock: socket.socket) -> Iterator[None]:
        self.add(target, sock)
        try:
            yield
        finally:
            self.remove(target, sock)

    def socket_for(self, target: str) -> socket.socket | None:
        """The most recent open socket registered for `target`, if any."""
        with self._lock:
            for sock in reversed(self._sockets.get(target, [])):
                if is_open(sock):
                    return sock
        return None


live_connections = LiveConnections()

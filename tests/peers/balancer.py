"""A round-robin TCP load balancer on loopback, as a team would put in front of several collectors.

Each new connection goes to the next backend that accepts it; a backend that refuses (stopped, killed)
is skipped. Connections already piped to a backend die with it, as they would behind a real balancer.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator

from tests.peers.wait import free_port


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.port = free_port()
        self._next = itertools.cycle(range(len(backends)))
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=256)
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def _connect_backend(self) -> socket.socket | None:
        for _ in range(len(self.backends)):
            host, port = self.backends[next(self._next)]
            try:
                return socket.create_connection((host, port), timeout=2)
            except OSError:
                continue
        return None

    def serve(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            backend = self._connect_backend()
            if backend is None:
                client.close()  # no backend: the client sees a reset, like an empty pool
                continue
            backend.settimeout(None)
            for source, sink in ((client, backend), (backend, client)):
                thread = threading.Thread(target=_pipe, args=(source, sink), daemon=True)
                thread.start()

    def close(self) -> None:
        self._stopping = True
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # either side went away: close both below
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@contextlib.contextmanager
def balancer(backends: list[tuple[str, int]]) -> Iterator[Balancer]:
    proxy = Balancer(backends)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(5)

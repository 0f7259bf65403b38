"""A fault-injecting TCP proxy on loopback: passes, delays, stalls or refuses connections on command.

A TCP connect completes in the kernel (SYN, SYN-ACK) before any program sees the connection, so a
userspace proxy cannot slow the handshake by waiting. It controls it the way an overloaded server
does instead: by its accept queue. "stall" fills the queue with its own idle connections, so the
kernel drops new SYNs and clients time out; "delay" keeps the queue full for `delay_s` then open
for a moment, in turns, so a client's SYN is dropped and gets in on a retransmission one or more
seconds later; "refuse" closes the listener, so connects are refused. Accepted connections are
piped to `upstream` when one is given.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Literal

Mode = Literal["pass", "delay", "stall", "refuse"]
BACKLOG = 1  # while faulting: Linux admits backlog + 1 pending connections, then drops SYNs
PASS_BACKLOG = 128


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream = upstream
        self.mode: Mode = "pass"
        self.delay_s = 1.0
        self._listener: socket.socket | None = None
        self.open_s = 1.2
        listener = self._listen(0)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._plugs: list[socket.socket] = []
        self._pairs: list[tuple[socket.socket, socket.socket]] = []  # (client, upstream) of piped connections
        self._drops = 0
        self._last_drop_reset = False
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(BACKLOG if self.mode in ("delay", "stall") else PASS_BACKLOG)
        listener.settimeout(0.05)
        return listener

    def set_mode(self, mode: Mode, delay_s: float = 1.0) -> None:
        with self._lock:
            self.mode, self.delay_s = mode, delay_s
            if mode == "refuse" and self._listener is not None:
                self._unplug()
                # shutdown() stops the listening at once, even while the loop thread sits in accept().
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            elif mode != "refuse" and self._listener is None:
                self._listener = self._listen(self.port)
            elif self._listener is not None:
                self._listener.listen(BACKLOG if mode in ("delay", "stall") else PASS_BACKLOG)
            if mode in ("delay", "stall"):
                self._plug()  # in effect when set_mode returns

    # --- the accept loop ---------------------------------------------------------------------

    def _run(self) -> None:
        phase_started = time.monotonic()
        plugged_phase = True
        while not self._stop.is_set():
            with self._lock:
                mode, listener = self.mode, self._listener
            if mode == "refuse" or listener is None:
                time.sleep(0.05)
                continue
            if mode == "stall":
                self._plug()
                time.sleep(0.05)
                continue
            if mode == "delay":
                elapsed = time.monotonic() - phase_started
                if plugged_phase and elapsed >= self.delay_s:
                    plugged_phase, phase_started = False, time.monotonic()
                    self._unplug()
                elif not plugged_phase and elapsed >= self.open_s:
                    plugged_phase, phase_started = True, time.monotonic()
                if plugged_phase:
                    self._plug()
                    time.sleep(0.02)
                    continue
            else:
                self._unplug()
            self._accept_one(listener, mode)

    def _plug(self) -> None:
        """Fill the accept queue with idle connections of our own, so the kernel drops new SYNs."""
        with self._lock:
            while len(self._plugs) < BACKLOG + 1 and self._listener is not None:
                plug = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                plug.settimeout(0.2)
                try:
                    plug.connect((self.host, self.port))
                except OSError:
                    plug.close()
                    return
                self._plugs.append(plug)

    def _unplug(self) -> None:
        with self._lock:
            plugs, self._plugs = self._plugs, []
        for plug in plugs:
            plug.close()

    def _accept_one(self, listener: socket.socket, mode: Mode) -> None:
        # Under the lock, so a mode change never races with an accept that would eat a fresh plug.
        with self._lock:
            if self.mode != mode:
                return
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                return
            drops_before = self._drops
        if self.upstream is None:
            client.close()
            return
        try:
            server = socket.create_connection(self.upstream, timeout=2)
        except OSError:
            client.close()
            return
        with self._lock:
            self._pairs.append((client, server))
            missed = self._drops != drops_before  # dropped while this one was being piped: it goes too
        if missed:
            self.drop_connections(reset=self._last_drop_reset)
            return
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def drop_connections(self, *, reset: bool) -> int:
        """End every piped connection as the server would: politely (FIN) or with a reset (RST); returns how
        many. The listener is untouched: with mode "refuse" set first, nothing gets back in."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self._drops += 1
            self._last_drop_reset = reset
        for client, server in pairs:
            with contextlib.suppress(OSError):
                if reset:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    client.shutdown(socket.SHUT_WR)  # the FIN goes out first, whatever is still unread
                client.shutdown(socket.SHUT_RD)  # wakes the thread reading it, so the close happens now
            client.close()  # before the upstream's end wakes the other thread (it would send a FIN)
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        return len(pairs)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._unplug()
        if self._listener is not None:
            self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        source.settimeout(None)  # inside: the connection may have been dropped already
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def fault_proxy(upstream: tuple[str, int] | None = None) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()

"""The thin socket layer over the sock_diag codec: one netlink socket, one filtered dump per read.

Linux only, behind one seam: `unavailable_reason()` says why elsewhere (the uplink source then reports
"not available on this platform" and everything else works). A read is a system call or two and no
packets; the kernel filters by destination, so it stays well under a millisecond however many sockets
the machine has (bench/sockdiag.py). Blocking but bounded: the reply is ready when `recv` is called.
"""

from __future__ import annotations

import itertools
import socket

from agent import os_features
from agent.net.sockdiag import NETLINK_SOCK_DIAG, DumpParser, SockDiagError, TcpDiagRecord, dump_request
from agent.net.sockstate import SOCKET_GONE

_RECEIVE_BUFFER = 65536
_TIMEOUT_S = 0.5


def unavailable_reason() -> str | None:
    """None where sock_diag can be read; else a sentence for the user."""
    features = os_features.current()
    if not features.sock_diag:
        return f"the kernel's view of the uplink (sock_diag) is not available on this platform ({features.platform})"
    return None


class SockDiagReader:
    """Reads tcp_info of the TCP connections to one destination; reuse it, it keeps its socket open."""

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise SockDiagError(reason)
        self._socket: socket.socket | None = None
        self._sequence = itertools.count(1)

    def _open(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
            sock.settimeout(_TIMEOUT_S)
            self._socket = sock
        return self._socket

    def read(self, address: str | None = None, port: int | None = None) -> list[TcpDiagRecord]:
        """Established TCP connections to address:port (either may be None: any), with their tcp_info."""
        families = [socket.AF_INET, socket.AF_INET6]
        if address is not None:
            families = [socket.AF_INET6 if ":" in address else socket.AF_INET]
        records: list[TcpDiagRecord] = []
        for family in families:
            records.extend(self._dump(family, address, port))
        return records

    def read_socket(self, sock: socket.socket) -> TcpDiagRecord | None:
        """The record of one of our own connected sockets (the relay's egress to the ingest), or None."""
        try:
            local_port = sock.getsockname()[1]
            remote_address, remote_port = sock.getpeername()[:2]
        except SOCKET_GONE:  # closed (either event loop's socket, sockstate.py): no record
            return None
        records = self.read(str(remote_address), int(remote_port))
        return next((record for record in records if record.local_port == local_port), None)

    def _dump(self, family: int, address: str | None, port: int | None) -> list[TcpDiagRecord]:
        sock = self._open()
        sequence = next(self._sequence)
        parser = DumpParser(sequence)
        try:
            sock.send(dump_request(family, address=address, port=port, sequence=sequence))
            while not parser.done:
                parser.feed(sock.recv(_RECEIVE_BUFFER))
        except OSError as exc:
            self.close()  # a half-read dump would leave replies behind in the socket
            raise SockDiagError(f"reading sock_diag failed: {exc}") from exc
        except SockDiagError:
            self.close()
            raise
        return parser.records

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

"""The sock_diag reader on this machine's own loopback connections, and its seam elsewhere."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from agent.net.sockdiag import SockDiagError
from agent.net.sockdiag_reader import SockDiagReader, unavailable_reason
from tests.platform_neutral import as_on

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, int]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        yield client, server.getsockname()[1]
    finally:
        for sock in (client, accepted, server):
            sock.close()


def test_reads_only_the_connection_to_the_destination(connection: tuple[socket.socket, int]) -> None:
    client, port = connection
    client.sendall(b"x" * 5000)
    reader = SockDiagReader()
    try:
        records = reader.read("127.0.0.1", port)
        again = reader.read("127.0.0.1", port)  # the socket is reused
    finally:
        reader.close()
    assert [record.local_port for record in records] == [client.getsockname()[1]]
    assert records[0].tcp_info is not None and records[0].tcp_info.bytes_acked == 5001  # +1: the SYN
    assert [record.local_port for record in again] == [client.getsockname()[1]]


def test_reads_one_of_its_own_sockets_by_its_four_tuple(connection: tuple[socket.socket, int]) -> None:
    client, _ = connection
    client.sendall(b"y" * 3000)
    other = socket.create_connection(client.getpeername())  # a second connection to the same listener
    reader = SockDiagReader()
    try:
        record = reader.read_socket(client)
        assert record is not None and record.local_port == client.getsockname()[1]
        assert record.tcp_info is not None and record.tcp_info.bytes_acked == 3001
        other.close()
        assert reader.read_socket(other) is None  # closed: nothing to read, no error
    finally:
        reader.close()
        other.close()


def test_a_port_with_no_connection_reads_nothing(connection: tuple[socket.socket, int]) -> None:
    reader = SockDiagReader()
    try:
        assert reader.read("127.0.0.1", 1) == []
    finally:
        reader.close()


def test_elsewhere_it_says_it_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    with as_on("win32", monkeypatch):  # the seam in agent/os_features.py, as Windows sees it
        reason = unavailable_reason()
        with pytest.raises(SockDiagError, match="not available"):
            SockDiagReader()
    assert reason is not None and "not available on this platform" in reason

"""Every reader of socket state answers "unknown" for a closing or closed socket, on both event loops.

A lost ingest connection is examined (TCP_INFO, names, options) while its event loop closes the socket:
asyncio's TransportSocket then raises OSError, uvloop's PseudoSocket ValueError("negative file
descriptor"). One of those escaping once ended the relay's destination task (issue 25). The sockets here
are real: an RtmpPublisher publishing to a relay on loopback, closed the way a lost connection is.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.net.live import LiveConnections
from agent.net.sockdiag_reader import SockDiagReader
from agent.net.sockstate import is_open
from agent.net.tcpinfo import read_ack_progress, read_bytes_acked, read_tcp_info
from agent.relay.connection_watch import read_acks
from agent.relay.destination import Destination
from agent.relay.failover import SentLedger
from agent.relay.frames import HeaderCache
from agent.relay.queue import MediaQueue
from agent.relay.relay import Relay
from agent.relay.settings import RelaySettings
from agent.rtmp.client import RtmpPublisher

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO and sock_diag are Linux's")

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed here"))]  # fmt: skip


@pytest.fixture(params=LOOPS)
def runner(request: pytest.FixtureRequest) -> Iterator[asyncio.Runner]:
    factory = None
    if request.param == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as loop_runner:
        yield loop_runner


Check = Callable[[RtmpPublisher], Any]


async def _examine_closed(check: Check, *, closing: bool) -> tuple[Any, Any]:
    """(the check on the live publisher, the check once its socket is closing or closed)."""
    relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0"}), [])
    await relay.start()
    publisher = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/k", timeout_s=5)
    try:
        await publisher.start()
        live = check(publisher)
        publisher.abort()  # what a lost session does
        if not closing:  # let the loop run the close: the file descriptor is gone
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert not is_open(publisher.socket)
        return live, check(publisher)
    finally:
        await publisher.close()
        await relay.close()


def _run(runner: asyncio.Runner, check: Check, closing: bool) -> tuple[Any, Any]:
    result: tuple[Any, Any] = runner.run(_examine_closed(check, closing=closing))
    return result


@pytest.mark.parametrize("closing", [True, False], ids=["closing", "closed"])
def test_tcp_info_of_a_closed_socket_is_unknown(runner: asyncio.Runner, closing: bool) -> None:
    live, gone = _run(runner, lambda p: read_tcp_info(p.socket), closing)
    assert live is not None and live.bytes_acked > 0
    assert gone is None or closing  # closing: the kernel may still answer, it must not raise


@pytest.mark.parametrize("closing", [True, False], ids=["closing", "closed"])
def test_bytes_acked_of_a_closed_socket_is_unknown(runner: asyncio.Runner, closing: bool) -> None:
    live, gone = _run(runner, lambda p: read_bytes_acked(p.socket), closing)
    assert isinstance(live, int) and live > 0
    assert gone is None or closing


@pytest.mark.parametrize("closing", [True, False], ids=["closing", "closed"])
def test_ack_progress_of_a_closed_socket_is_unknown(runner: asyncio.Runner, closing: bool) -> None:
    live, gone = _run(runner, lambda p: read_ack_progress(p.socket), closing)
    acked, age_s = live
    assert acked > 0 and 0 <= age_s < 60
    assert gone is None or closing


@pytest.mark.parametrize("closing", [True, False], ids=["closing", "closed"])
def test_sock_diag_record_of_a_closed_socket_is_none(runner: asyncio.Runner, closing: bool) -> None:
    reader = SockDiagReader()
    try:
        live, gone = _run(runner, lambda p: reader.read_socket(p.socket), closing)
    finally:
        reader.close()
    assert live is not None
    if not closing:
        assert gone is None


def test_live_connections_skip_a_closed_socket(runner: asyncio.Runner) -> None:
    registry = LiveConnections()

    def check(publisher: RtmpPublisher) -> socket.socket | None:
        registry.add("127.0.0.1:1", publisher.socket)
        return registry.socket_for("127.0.0.1:1")

    live, gone = _run(runner, check, closing=False)
    assert live is not None and gone is None


@pytest.mark.parametrize("closing", [True, False], ids=["closing", "closed"])
def test_the_connection_watch_reads_a_closed_socket_as_no_news(runner: asyncio.Runner, closing: bool) -> None:
    """read_acks is the lost session's last word on what the ingest got (the line in issue 25's traceback)."""
    ledger = SentLedger()
    live, gone = _run(runner, lambda p: read_acks(p, ledger, MediaQueue()), closing)
    assert live[0] >= 0 and gone[0] >= live[0]  # progress never goes back


@pytest.mark.parametrize("closing", [True, False], ids=["closing", "closed"])
def test_a_destination_reads_and_tunes_a_closed_socket_without_raising(runner: asyncio.Runner, closing: bool) -> None:
    destination = Destination(["rtmp://127.0.0.1:1/live/k"], HeaderCache())

    def check(publisher: RtmpPublisher) -> object:
        destination.publisher = publisher
        destination._size_below_queue(publisher)  # setsockopt on the socket the session just got
        return destination.tcp_info()

    live, gone = _run(runner, check, closing)
    assert live is not None
    assert gone is None or closing


def test_is_open_on_both_loops(runner: asyncio.Runner) -> None:
    live, gone = _run(runner, lambda p: is_open(p.socket), closing=False)
    assert live is True and gone is False

"""The loss rules for one ingest connection, and the ledger of what the ingest has: read from the kernel.

A connection is lost when the ingest closes it, or when it acknowledges nothing for `relay.stall_s` while
media waits (AckWatch, failover.py). Progress is the kernel's acknowledged bytes (Linux TCP_INFO
`tcpi_bytes_acked`): what the ingest really has, which also tells the ledger which frames are safe and
which a failover must send again. Where there is no TCP_INFO (macOS, Windows), progress is the kernel
taking our bytes, and the ledger follows the ingest's RTMP Acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final

from agent.beat import next_beat
from agent.net.tcpinfo import read_bytes_acked
from agent.relay.failover import AckWatch, IngestLost, SentLedger
from agent.relay.queue import MediaQueue
from agent.rtmp.client import RtmpPublisher

# How often the watch reads the kernel's acknowledged bytes. A lost connection wakes it at once; the stall
# rule is measured in seconds (relay.stall_s).
WATCH_INTERVAL_S: Final = 0.5


async def watch_connection(
    publisher: RtmpPublisher,
    ledger: SentLedger,
    queue: MediaQueue,
    *,
    stall_s: float,
    clock: Callable[[], float],
    before_reading: Callable[[], None],
) -> None:
    """Until the connection is lost (raises IngestLost). `before_reading` runs before each look: the relay's
    fast lane notes the frames it wrote, so the ledger has them."""
    watch = AckWatch(stall_s, clock())
    while True:
        with contextlib.suppress(TimeoutError):
            # On the agent's beat (agent/beat.py): every other look shares the 1 Hz wake-up.
            async with asyncio.timeout(next_beat(time.monotonic(), WATCH_INTERVAL_S) - time.monotonic()):
                await publisher.wait_lost()
        if not publisher.publishing:
            raise IngestLost("the ingest closed the connection")
        before_reading()
        acked, pending = read_acks(publisher, ledger, queue)
        now = clock()
        if watch.observe(acked, pending, now):
            raise IngestLost(
                f"nothing acknowledged for {watch.waited_s(now):.1f} s while "
                f"{queue.duration_ms} ms of media waited (relay.stall_s = {stall_s:g})"
            )


def read_acks(publisher: RtmpPublisher, ledger: SentLedger, queue: MediaQueue) -> tuple[int, bool]:
    """(progress marker, whether data waits), and the ledger told what the ingest has."""
    sent = publisher.bytes_sent
    sock: Any = publisher.socket
    kernel_acked = None if sock is None else read_bytes_acked(sock)
    if kernel_acked is not None:
        # bytes_acked counts the handshake (and the SYN) too; ours counts chunk-stream bytes.
        acked = min(max(0, kernel_acked - 1 - publisher.connection.handshake_bytes_sent), sent)
        ledger.acked(acked)
        return acked, len(queue) > 0 or acked < sent
    # No TCP_INFO (macOS, Windows): progress is the kernel taking our bytes.
    ledger.acked(publisher.peer_acknowledged_bytes or 0)
    return sent - publisher.write_buffer_size, len(queue) > 0 or publisher.write_buffer_size > 0

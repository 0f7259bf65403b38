"""The loss rules for one ingest connection, and the ledger of what the ingest has: read from the kernel.

A connection is lost when the ingest closes it, or when it acknowledges nothing for `relay.stall_s` while
media waits (AckWatch, failover.py). Progress is the kernel's acknowledged bytes (Linux TCP_INFO
`tcpi_bytes_acked`): what the ingest really has, which also tells the ledger which frames are safe and
which a failover must send again. Where there is no TCP_INFO (macOS, Windows), progress is the kernel
taking our bytes, and the ledger follows the ingest's RTMP Acknowledgements.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from agent.beat import next_beat
from agent.net.tcpinfo import read_ack_progress
from agent.relay.failover import AckWatch, IngestLost, SentLedger
from agent.relay.queue import MediaQueue
from agent.rtmp.client import RtmpPublisher

# How often the watch reads the kernel's acknowledged bytes. A lost connection wakes it at once; the stall
# rule is measured in seconds (relay.stall_s).
WATCH_INTERVAL_S: Final = 0.5
STALL_LOOK_AFTER_S: Final = 0.01  # the stall is judged just past its moment, never just before it


async def watch_connection(
    publisher: RtmpPublisher,
    ledger: SentLedger,
    queue: MediaQueue,
    *,
    stall_s: float,
    clock: Callable[[], float],
    before_reading: Callable[[], None],
    on_acked: Callable[[int, float], None] | None = None,
) -> None:
    """Until the connection is lost (raises IngestLost). `before_reading` runs before each look: the relay's
    fast lane notes the frames it wrote, so the ledger has them. `on_acked` gets each look's acknowledged
    bytes and time (the egress rate that sizes what may sit below the queue, below_queue.py)."""
    watch = AckWatch(stall_s, clock())
    while True:
        now_s = time.monotonic()
        # On the agent's beat (agent/beat.py): every other look shares the 1 Hz wake-up; but when the stall
        # rule comes due before the next beat, look then (a beat later would hold the failover up to 0.5 s).
        wake_in_s = next_beat(now_s, WATCH_INTERVAL_S) - now_s
        due_in_s = watch.stalled_at_s - clock() + STALL_LOOK_AFTER_S
        try:
            async with asyncio.timeout(max(0.0, min(wake_in_s, due_in_s))):
                await publisher.wait_lost()
        except TimeoutError:
            pass
        else:  # whatever the publishing flag says: a wait that returns at once would never yield the loop
            raise IngestLost("the ingest closed the connection")
        if not publisher.publishing:
            raise IngestLost("the ingest closed the connection")
        before_reading()
        acked, pending, ack_age_s = read_acks(publisher, ledger, queue)
        now = clock()
        if on_acked is not None:
            on_acked(acked, now)
        if watch.observe(acked, pending, now, ack_age_s):
            raise IngestLost(
                f"nothing acknowledged for {watch.waited_s(now):.1f} s while "
                f"{queue.duration_ms} ms of media waited (relay.stall_s = {stall_s:g})"
            )


def read_acks(publisher: RtmpPublisher, ledger: SentLedger, queue: MediaQueue) -> tuple[int, bool, float | None]:
    """(progress marker, whether data waits, seconds since the kernel last saw an ACK or None), and the ledger
    told what the ingest has."""
    sent = publisher.bytes_sent
    sock: Any = publisher.socket
    progress = None if sock is None else read_ack_progress(sock)
    if progress is not None:
        kernel_acked, ack_age_s = progress
        # bytes_acked counts the handshake (and the SYN) too; ours counts chunk-stream bytes.
        acked = min(max(0, kernel_acked - 1 - publisher.connection.handshake_bytes_sent), sent)
        ledger.acked(acked)
        return acked, len(queue) > 0 or acked < sent, ack_age_s
    # No TCP_INFO (macOS, Windows; or the socket is already closed): progress is the kernel taking our bytes.
    ledger.acked(publisher.peer_acknowledged_bytes or 0)
    return sent - publisher.write_buffer_size, len(queue) > 0 or publisher.write_buffer_size > 0, None

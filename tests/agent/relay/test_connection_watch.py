"""The connection watch never spins: a connection whose loss is already signalled ends the watch at once,
whatever the publisher's flag says (a race in the publish handshake once left it set: the watch then looped
without ever yielding the event loop, and the whole relay stood still)."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.relay.connection_watch import watch_connection
from agent.relay.failover import IngestLost, SentLedger
from agent.relay.queue import MediaQueue


class _LostButFlaggedPublishing:
    publishing = True
    bytes_sent = 0
    socket = None
    write_buffer_size = 0
    peer_acknowledged_bytes = None

    async def wait_lost(self) -> None:
        return None  # lost already: returns at once, without suspending


async def test_a_lost_connection_ends_the_watch_even_when_flagged_publishing() -> None:
    publisher: object = _LostButFlaggedPublishing()
    watch = watch_connection(
        publisher,  # type: ignore[arg-type]
        SentLedger(),
        MediaQueue(),
        stall_s=3.0,
        clock=time.monotonic,
        before_reading=lambda: None,
    )
    with pytest.raises(IngestLost, match="closed the connection"):
        async with asyncio.timeout(5):
            await watch

"""What may sit below the relay's queue toward one ingest, in stream time: asyncio's write buffer and the
kernel's unsent bytes, sized from the rate the ingest takes the stream.

Why: the drop policy (queue.py) can drop only what is still queued. Bytes handed to asyncio or to the kernel
are committed: they go out, however late. With fixed sizes (asyncio's 64 KB high-water mark and a 128 KB
TCP_NOTSENT_LOWAT), a link cut to a third of a 2.6 Mbit/s stream held 1.7 s of it down there, out of the
policy's reach: every picture spent that long committed before the policy could weigh it against the next
keyframe. Scaled to the measured egress rate, both hold about `BELOW_QUEUE_S` of the stream at any rate, with
a floor so a slow link still keeps the kernel fed, and a ceiling at the old fixed sizes so a fast link
(6 and 50 Mbit/s) is written exactly as before.

The rate is the kernel's acknowledged bytes over the last `RATE_WINDOW_S` (read by the connection watch,
connection_watch.py, twice a second): what the path delivered, the stream's own rate when nothing waits. A
new connection starts at the ceiling until it has half a second of figures. Sans-I/O but for `apply`, which
hands the sizes to the socket and the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from agent.net.sockstate import SOCKET_GONE

# Linux and macOS have it (with different numbers); Windows does not, and there no number is the right guess.
TCP_NOTSENT_LOWAT: Final[int | None] = getattr(socket, "TCP_NOTSENT_LOWAT", None)

BELOW_QUEUE_S: Final = 0.15  # of the stream, at the measured rate: the kernel's share and asyncio's
KERNEL_SHARE: Final = 0.6
NOTSENT_LOWAT_MIN_BYTES: Final = 8 * 1024  # a slow link still has a few segments ready when an ACK comes
NOTSENT_LOWAT_MAX_BYTES: Final = 128 * 1024  # the fixed size before: a fast link is written as it was
WRITE_BUFFER_MIN_BYTES: Final = 4 * 1024
WRITE_BUFFER_MAX_BYTES: Final = 64 * 1024  # asyncio's default high-water mark
RATE_WINDOW_S: Final = 0.5
_MIN_SPAN_S: Final = 0.25  # a rate over less than this is too noisy to size anything by
_RESIZE_FRACTION: Final = 0.1  # sizes within this of the ones set stay (no system call for nothing)


@dataclass(frozen=True, slots=True)
class BelowQueueLimits:
    notsent_lowat_bytes: int = NOTSENT_LOWAT_MAX_BYTES
    write_buffer_high_bytes: int = WRITE_BUFFER_MAX_BYTES

    @classmethod
    def for_rate(cls, bytes_per_s: float) -> BelowQueueLimits:
        """About `BELOW_QUEUE_S` of the stream at `bytes_per_s`, within the floors and ceilings."""
        budget = bytes_per_s * BELOW_QUEUE_S
        kernel = round(min(NOTSENT_LOWAT_MAX_BYTES, max(NOTSENT_LOWAT_MIN_BYTES, budget * KERNEL_SHARE)))
        transport = round(min(WRITE_BUFFER_MAX_BYTES, max(WRITE_BUFFER_MIN_BYTES, budget * (1 - KERNEL_SHARE))))
        return cls(kernel, transport)

    def close_to(self, other: BelowQueueLimits) -> bool:
        return _close(self.notsent_lowat_bytes, other.notsent_lowat_bytes) and _close(
            self.write_buffer_high_bytes, other.write_buffer_high_bytes
        )


def _close(a: int, b: int) -> bool:
    return abs(a - b) <= _RESIZE_FRACTION * max(a, b)


class EgressRate:
    """The rate one connection's bytes are acknowledged, over the last `window_s`."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()  # (monotonic s, acknowledged bytes)

    def observe(self, acked_bytes: int, now_s: float) -> float | None:
        """Note the bytes acknowledged so far; returns the rate in bytes per second, or None while the
        figures span too little time."""
        samples = self._samples
        if samples and acked_bytes < samples[-1][1]:
            samples.clear()  # a new count (a new connection): the old figures say nothing about it
        samples.append((now_s, acked_bytes))
        while len(samples) > 2 and now_s - samples[1][0] >= self.window_s:
            samples.popleft()
        first_s, first_bytes = samples[0]
        span_s = now_s - first_s
        if span_s < _MIN_SPAN_S:
            return None
        return (acked_bytes - first_bytes) / span_s


def apply(transport: asyncio.WriteTransport | None, sock: Any, limits: BelowQueueLimits) -> None:
    """Hand the sizes to a connection: the transport's high-water mark (its low one a quarter of it, as
    asyncio's default), which `drain()` waits on, and TCP_NOTSENT_LOWAT where the platform has it."""
    if transport is not None and not transport.is_closing():
        transport.set_write_buffer_limits(high=limits.write_buffer_high_bytes)
    if sock is None or TCP_NOTSENT_LOWAT is None:
        return
    with contextlib.suppress(*SOCKET_GONE):  # closed already: the session ends on its own
        sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, limits.notsent_lowat_bytes)

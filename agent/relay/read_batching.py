"""Waking once per video frame, not once per message: the encoder socket's receive low-water mark.

Why: at 6 Mbit/s an encoder sends about 77 messages a second (30 video frames of tens of kilobytes and 47 AAC
frames of a few hundred bytes), and each one woke the relay: a context switch, an event-loop turn and the
Python of a read. Most of the relay's CPU was that fixed cost per wake-up, not the bytes (bench/relay.py:
77 wake-ups a second and about 3x nginx-rtmp's CPU; with this, 32 and about 1.9x). So while a stream is
live the relay sets SO_RCVLOWAT on the encoder's socket to the bytes the stream brings in
`relay.read_batch_ms` (15 ms by default, half a frame interval at 30 fps): the kernel wakes the relay when
that much has arrived. Most video frames are larger, so they are read the moment they are whole, as before;
an audio frame or a small B-frame waits in the kernel for the next message, at most a frame interval. The
bytes, their order and what the relay does with them are unchanged; only when they are read.

The mark follows the stream: the link counts its bytes and sets the mark from the last second's rate, so a
slow or audio-only stream is read message by message, as before. A guard bounds the wait whatever the
stream does: when no read has come `GUARD_S` after the last one (a slow frame rate, or the stream paused),
the mark drops to one byte, so what waits is read at once, and the read after sets it again: nothing waits
longer than that. A command waits at most that long too, and what follows one is read as it comes: the
mark goes back to one byte until the stream's next read as soon as a read brings a command, or takes the
general path.

An end of the connection (FIN, reset) wakes the relay whatever the mark, so a lost encoder is noticed as
fast as before. Where the system has no SO_RCVLOWAT (Windows refuses it), the relay reads every message as
it comes and says so once in its debug log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Final

log = logging.getLogger(__name__)

RETUNE_S: Final = 1.0  # the mark is set again from the rate measured over about this long
GUARD_S: Final = 0.05  # no read this long after the last one: the mark drops to one byte
MAX_LOW_WATER_BYTES: Final = 64 * 1024  # a quarter of the link's read buffer: one read still takes it all
_SO_RCVLOWAT: Final = getattr(socket, "SO_RCVLOWAT", None)


def low_water_bytes(bytes_per_s: float, batch_s: float) -> int:
    """The mark for a stream arriving at `bytes_per_s`: what it brings in `batch_s`, at least one byte."""
    return max(1, min(MAX_LOW_WATER_BYTES, int(bytes_per_s * batch_s)))


class ReadBatching:
    """The low-water mark of one publishing encoder's socket (`sock`: the transport's socket)."""

    def __init__(self, sock: Any, batch_s: float, loop: asyncio.AbstractEventLoop) -> None:
        self._socket = sock
        self._batch_s = batch_s
        self._loop = loop
        self._usable = batch_s > 0 and _SO_RCVLOWAT is not None and sock is not None
        self.mark_bytes = 1  # the kernel's default; what the socket has now
        self._target_bytes = 1  # what the stream's rate asks for; the guard lowers the mark below it a while
        self._guard: asyncio.TimerHandle | None = None
        self._counted_bytes = 0
        self._counting_since_s: float | None = None

    def after_read(self, nbytes: int, now_s: float) -> None:
        """A read of a live stream's bytes (the fast lane's path), at `now_s` on the loop's clock."""
        if not self._usable:
            return
        self._counted_bytes += nbytes
        since = self._counting_since_s
        if since is None:
            self._counting_since_s = now_s
        elif now_s - since >= RETUNE_S:
            self._target_bytes = low_water_bytes(self._counted_bytes / (now_s - since), self._batch_s)
            self._counted_bytes, self._counting_since_s = 0, now_s
        if self.mark_bytes != self._target_bytes:  # retuned, or back after the guard read what waited
            self._set_mark(self._target_bytes)
        if self._target_bytes > 1:
            if self._guard is not None:
                self._guard.cancel()
            self._guard = self._loop.call_at(now_s + GUARD_S, self._guard_expired)

    def stop(self) -> None:
        """Back to one byte (the stream ended, or a read took the general path); counting starts again."""
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        self._counted_bytes, self._counting_since_s = 0, None
        self._target_bytes = 1
        if self.mark_bytes != 1:
            self._set_mark(1)

    def lower(self) -> None:
        """One byte until the next read of the stream: a command or a header came, and what follows it
        (the end of the stream, say) is read as it comes. The stream's rate is still counted."""
        self._guard_expired()

    def close(self) -> None:
        """The connection is gone: no guard may fire on its socket."""
        self._usable = False
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _guard_expired(self) -> None:
        if self._guard is not None:
            self._guard.cancel()  # (when called by `lower`, before it fired)
            self._guard = None
        if self.mark_bytes != 1:
            self._set_mark(1)  # whatever waits below the mark is read now; the next read raises it again

    def _set_mark(self, mark_bytes: int) -> None:
        if mark_bytes == self.mark_bytes or not self._usable:
            return
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, _SO_RCVLOWAT, mark_bytes)
        except (OSError, ValueError) as exc:  # Windows, or the socket is gone: read every message as it comes
            self._usable = False
            log.debug("relay: reading each message as it comes (no receive low-water mark here: %s)", exc)
            return
        self.mark_bytes = mark_bytes

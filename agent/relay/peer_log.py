"""The relay's warnings about encoder connections, rate-limited per peer address.

Anyone who can reach the listener can make a connection fail on purpose, as often as they like: without a
limit, 300 malformed connections wrote 300 WARNING lines and buried the ones that matter. Each peer address
gets `burst` lines per `window_s`; past that one line says the rest are held back, and the next line after
the window says how many were. Not a general log filter: only the per-connection lines of
`encoder_link.py` go through it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_PEERS_TRACKED: Final = 1024  # oldest forgotten first: a flood of addresses cannot grow this


@dataclass(slots=True)
class _Window:
    started_s: float
    lines: int = 0
    held_back: int = 0


class PeerLog:
    def __init__(
        self,
        log: logging.Logger,
        *,
        burst: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self.held_back_total = 0

    def warning(self, peer_host: str, message: str, *args: object) -> None:
        self.line(logging.WARNING, peer_host, message, *args)

    def line(self, level: int, peer_host: str, message: str, *args: object) -> None:
        """Log `message % args` at `level` unless `peer_host` had its `burst` of lines in this window."""
        now = self._clock()
        window = self._windows.get(peer_host)
        if window is None or now - window.started_s >= self.window_s:
            if window is not None and window.held_back:
                self._log.warning(
                    "relay: %d more lines about connections from %s were held back in %g s",
                    window.held_back,
                    peer_host,
                    self.window_s,
                )
            window = _Window(now)
            self._windows[peer_host] = window
            if len(self._windows) > MAX_PEERS_TRACKED:
                self._windows.popitem(last=False)
        self._windows.move_to_end(peer_host)
        if window.lines < self.burst:
            window.lines += 1
            self._log.log(level, message, *args)
            if window.lines == self.burst:
                self._log.warning(
                    "relay: %d lines about connections from %s: holding back more for %g s",
                    self.burst,
                    peer_host,
                    self.window_s,
                )
            return
        window.held_back += 1
        self.held_back_total += 1

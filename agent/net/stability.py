"""Sliding-window statistics of one target's probes: RTT percentiles, RFC 3550 jitter, loss.

Pure bookkeeping, no I/O: probes record outcomes with their (monotonic) time; windows are read when
a sample is built. Bounded: only the last `keep_s` seconds are held.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    at: float
    rtt_ms: float | None  # None: the probe was lost (timed out, refused, name not found)


@dataclass(frozen=True)
class WindowStats:
    rtt_p50_ms: float | None
    rtt_p95_ms: float | None
    rtt_max_ms: float | None
    loss_ratio: float | None
    probes: int


def _nearest_rank(ordered: list[float], pct: float) -> float:
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class TargetWindow:
    def __init__(self, keep_s: float = 60.0) -> None:
        self.keep_s = keep_s
        self._outcomes: deque[Outcome] = deque()
        self.jitter_ms: float | None = None
        self._last_rtt_ms: float | None = None
        self.last: Outcome | None = None

    def record(self, at: float, rtt_ms: float | None) -> None:
        outcome = Outcome(at, rtt_ms)
        self._outcomes.append(outcome)
        self.last = outcome
        while self._outcomes and self._outcomes[0].at < at - self.keep_s:
            self._outcomes.popleft()
        if rtt_ms is not None:
            if self._last_rtt_ms is not None:
                # RFC 3550 6.4.1: J += (|D| - J) / 16, D the difference of consecutive transit times.
                difference = abs(rtt_ms - self._last_rtt_ms)
                current = self.jitter_ms if self.jitter_ms is not None else 0.0
                self.jitter_ms = current + (difference - current) / 16
            self._last_rtt_ms = rtt_ms

    def window(self, now: float, span_s: float) -> WindowStats:
        recent = [outcome for outcome in self._outcomes if outcome.at >= now - span_s]
        if not recent:
            return WindowStats(None, None, None, None, 0)
        rtts = sorted(outcome.rtt_ms for outcome in recent if outcome.rtt_ms is not None)
        lost = sum(1 for outcome in recent if outcome.rtt_ms is None)
        return WindowStats(
            rtt_p50_ms=_nearest_rank(rtts, 50) if rtts else None,
            rtt_p95_ms=_nearest_rank(rtts, 95) if rtts else None,
            rtt_max_ms=rtts[-1] if rtts else None,
            loss_ratio=lost / len(recent),
            probes=len(recent),
        )

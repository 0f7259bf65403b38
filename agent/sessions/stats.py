"""Bounded-memory statistics for a whole session: running mean/min/max, a quantile sketch, counter deltas.

A 6-hour stream has 21,600 ticks; a summary must not keep them in a list. These accumulators take one
value at a time and hold a few numbers (the sketch: at most a few hundred buckets, whatever the count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Relative accuracy of the quantile sketch: a reported quantile is within 1% of a true sample value.
SKETCH_RELATIVE_ACCURACY = 0.01
# Values at or below this count as zero (a bitrate of 0 during an outage must pull p5 down, not vanish).
SKETCH_ZERO = 1e-9


@dataclass
class Running:
    """Count, mean, min and max of a stream of values."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def min(self) -> float | None:
        return self.minimum if self.count else None

    @property
    def max(self) -> float | None:
        return self.maximum if self.count else None


@dataclass
class QuantileSketch:
    """A log-bucketed histogram (the DDSketch idea): each bucket covers values within a factor `gamma`,
    so any quantile is answered within `SKETCH_RELATIVE_ACCURACY`, and the number of buckets grows with the
    range of values (log of max/min), not with their count. Non-negative values only."""

    relative_accuracy: float = SKETCH_RELATIVE_ACCURACY
    buckets: dict[int, int] = field(default_factory=dict)
    zeros: int = 0
    count: int = 0

    def __post_init__(self) -> None:
        self._gamma = (1 + self.relative_accuracy) / (1 - self.relative_accuracy)
        self._log_gamma = math.log(self._gamma)

    def add(self, value: float) -> None:
        self.count += 1
        if value <= SKETCH_ZERO:
            self.zeros += 1
            return
        index = math.ceil(math.log(value) / self._log_gamma)
        self.buckets[index] = self.buckets.get(index, 0) + 1

    def quantile(self, q: float) -> float | None:
        """The value below which a share `q` (0..1) of the values lie; None when empty."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen > rank:
                # The bucket's midpoint in relative terms: within relative_accuracy of every value in it.
                return 2 * self._gamma**index / (self._gamma + 1)
        return 2 * self._gamma ** max(self.buckets) / (self._gamma + 1)


@dataclass
class CounterDelta:
    """How much a cumulative counter (frames dropped since the stream started) grew over the session.

    Encoders count from the start of their stream, which is the session's start, so the first reading
    counts in full. A counter that goes down was reset (the encoder restarted its output, a
    reconnect): what it counted since then is added, nothing is subtracted."""

    last: int = 0
    total: int = 0

    def add(self, value: int) -> None:
        self.total += value - self.last if value >= self.last else value
        self.last = value

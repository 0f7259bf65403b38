"""Bounded per-metric history: compact ring buffers so memory stays flat however long a stream runs.

Each metric keeps two preallocated `array`s (timestamps as float64, values as float32): 12 bytes a
point, 6 h at 1 Hz is about 260 KB a metric, allocated once. No lists of dicts, no `pop(0)`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable


class RingSeries:
    """A fixed-capacity time series; the oldest point is overwritten when full."""

    __slots__ = ("_count", "_next", "_times", "_values", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._times = array("d", bytes(8 * capacity))
        self._values = array("f", bytes(4 * capacity))
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, t: float, value: float) -> None:
        self._times[self._next] = t
        self._values[self._next] = value
        self._next = (self._next + 1) % self.capacity
        if self._count < self.capacity:
            self._count += 1

    def _oldest_index(self) -> int:
        return (self._next - self._count) % self.capacity

    def points(self, since: float | None = None) -> list[tuple[float, float]]:
        """Points with time >= `since`, oldest first."""
        start = self._oldest_index()
        indices: Iterable[int] = ((start + offset) % self.capacity for offset in range(self._count))
        times, values = self._times, self._values
        # float32 storage: report 7 significant digits, not float32 noise such as 0.527999997.
        if since is None:
            return [(times[i], float(f"{values[i]:.7g}")) for i in indices]
        return [(times[i], float(f"{values[i]:.7g}")) for i in indices if times[i] >= since]

    def recent(self, since: float) -> list[tuple[float, float]]:
        """Points with time >= `since`, oldest first, reading back from the newest: costs the window,
        not the whole buffer (rules read a few seconds of hours of history every tick)."""
        times, values = self._times, self._values
        found: list[tuple[float, float]] = []
        index = self._next
        for _ in range(self._count):
            index = (index - 1) % self.capacity
            if times[index] < since:
                break
            found.append((times[index], float(f"{values[index]:.7g}")))
        found.reverse()
        return found

    def latest(self) -> tuple[float, float] | None:
        if self._count == 0:
            return None
        index = (self._next - 1) % self.capacity
        return self._times[index], float(self._values[index])

    @property
    def nbytes(self) -> int:
        return self._times.itemsize * self.capacity + self._values.itemsize * self.capacity


class History:
    """One `RingSeries` per metric name, created on first use with the same capacity."""

    def __init__(self, capacity: int, max_metrics: int = 512) -> None:
        self.capacity = capacity
        self.max_metrics = max_metrics
        self._series: dict[str, RingSeries] = {}

    def record(self, t: float, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            series = self._series.get(name)
            if series is None:
                if len(self._series) >= self.max_metrics:
                    continue  # a runaway source must not grow memory without bound
                series = self._series[name] = RingSeries(self.capacity)
            series.append(t, value)

    def metrics(self) -> list[str]:
        return sorted(self._series)

    def series(self, name: str) -> RingSeries | None:
        return self._series.get(name)

    @property
    def nbytes(self) -> int:
        return sum(series.nbytes for series in self._series.values())

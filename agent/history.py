"""Bounded per-metric history: compact ring buffers so memory stays flat however long a stream runs.

Metrics are grouped by source (the part of the name before the first dot): the metrics of one sample
share a timestamp, so a group keeps one preallocated float64 ring of times and one float32 ring of
values per metric (NaN where a sample did not carry that metric). 4 bytes a point and metric plus
8 bytes a point and source: 6 h at 1 Hz is 86 KB a metric, allocated once. No lists of dicts, no `pop(0)`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator

_NAN = float("nan")


def _rounded(value: float) -> float:
    # float32 storage: report 7 significant digits, not float32 noise such as 0.527999997.
    return float(f"{value:.7g}")


class _SeriesReader:
    """Reading a ring: subclasses say where the times, values and write position are."""

    __slots__ = ()
    capacity: int

    def _ring(self) -> tuple[array[float], array[float], int, int]:
        """(times, values, index of the next write, number of points held)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self._ring()[3]

    def _indices_oldest_first(self) -> Iterator[int]:
        _, _, next_index, count = self._ring()
        start = (next_index - count) % self.capacity
        return ((start + offset) % self.capacity for offset in range(count))

    def _indices_newest_first(self) -> Iterator[int]:
        _, _, next_index, count = self._ring()
        return ((next_index - 1 - offset) % self.capacity for offset in range(count))

    def points(self, since: float | None = None) -> list[tuple[float, float]]:
        """Points with time >= `since`, oldest first."""
        times, values, _, _ = self._ring()
        return [
            (times[i], _rounded(values[i]))
            for i in self._indices_oldest_first()
            if (since is None or times[i] >= since) and not math.isnan(values[i])
        ]

    def recent(self, since: float) -> list[tuple[float, float]]:
        """Points with time >= `since`, oldest first, reading back from the newest: costs the window,
        not the whole buffer (rules read a few seconds of hours of history every tick)."""
        times, values, _, _ = self._ring()
        found: list[tuple[float, float]] = []
        for index in self._indices_newest_first():
            if times[index] < since:
                break
            if not math.isnan(values[index]):
                found.append((times[index], _rounded(values[index])))
        found.reverse()
        return found

    def latest(self) -> tuple[float, float] | None:
        times, values, _, _ = self._ring()
        for index in self._indices_newest_first():
            if not math.isnan(values[index]):
                return times[index], _rounded(values[index])
        return None


class RingSeries(_SeriesReader):
    """A standalone fixed-capacity time series; the oldest point is overwritten when full."""

    __slots__ = ("_count", "_next", "_times", "_values", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._times = array("d", bytes(8 * capacity))
        self._values = array("f", bytes(4 * capacity))
        self._next = 0
        self._count = 0

    def _ring(self) -> tuple[array[float], array[float], int, int]:
        return self._times, self._values, self._next, self._count

    def append(self, t: float, value: float) -> None:
        self._times[self._next] = t
        self._values[self._next] = value
        self._next = (self._next + 1) % self.capacity
        if self._count < self.capacity:
            self._count += 1

    @property
    def nbytes(self) -> int:
        return self._times.itemsize * self.capacity + self._values.itemsize * self.capacity


class _SharedTimesSeries(_SeriesReader):
    """One metric of a source group: its own values, the group's times and write position."""

    __slots__ = ("_group", "capacity", "values")

    def __init__(self, group: _SourceGroup) -> None:
        self._group = group
        self.capacity = group.capacity
        self.values = array("f", [_NAN]) * group.capacity

    def _ring(self) -> tuple[array[float], array[float], int, int]:
        group = self._group
        return group.times, self.values, group.next_index, group.count

    @property
    def nbytes(self) -> int:
        return self.values.itemsize * self.capacity


class _SourceGroup:
    __slots__ = ("capacity", "count", "next_index", "series", "times")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.times = array("d", bytes(8 * capacity))
        self.series: dict[str, _SharedTimesSeries] = {}
        self.next_index = 0
        self.count = 0

    def append(self, t: float, metrics: dict[str, float], history: History) -> None:
        index = self.next_index
        self.times[index] = t
        for existing in self.series.values():
            existing.values[index] = _NAN  # overwritten below when this sample carries the metric
        for name, value in metrics.items():
            series = self.series.get(name)
            if series is None:
                if not history._has_room():
                    continue  # a runaway source must not grow memory without bound
                series = self.series[name] = _SharedTimesSeries(self)
                history._metric_count += 1
            series.values[index] = value
        self.next_index = (index + 1) % self.capacity
        if self.count < self.capacity:
            self.count += 1


class History:
    """Per-metric history, grouped by source; `series(name)` reads one metric."""

    def __init__(self, capacity: int, max_metrics: int = 512) -> None:
        self.capacity = capacity
        self.max_metrics = max_metrics
        self._groups: dict[str, _SourceGroup] = {}
        self._metric_count = 0

    def _has_room(self) -> bool:
        return self._metric_count < self.max_metrics

    def record(self, t: float, metrics: dict[str, float]) -> None:
        """Record one sample's metrics (names `<source>.<field>`), all taken at time `t`."""
        by_source: dict[str, dict[str, float]] = {}
        for name, value in metrics.items():
            by_source.setdefault(name.partition(".")[0], {})[name] = value
        for source, values in by_source.items():
            group = self._groups.get(source)
            if group is None:
                group = self._groups[source] = _SourceGroup(self.capacity)
            group.append(t, values, self)

    def metrics(self) -> list[str]:
        return sorted(name for group in self._groups.values() for name in group.series)

    def series(self, name: str) -> _SeriesReader | None:
        group = self._groups.get(name.partition(".")[0])
        return None if group is None else group.series.get(name)

    @property
    def nbytes(self) -> int:
        return sum(
            group.times.itemsize * group.capacity + sum(s.nbytes for s in group.series.values())
            for group in self._groups.values()
        )

"""Bounded per-metric history: compact ring buffers so memory stays flat however long a stream runs.

Metrics are grouped by source (the part of the name before the first dot): the metrics of one sample
share a timestamp, so a group keeps one preallocated float64 ring of times and one float32 ring of
values per metric (NaN where a sample did not carry that metric). 4 bytes a point and metric plus
8 bytes a point and source: 6 h at 1 Hz is 86 KB a metric, allocated once. No lists of dicts, no `pop(0)`.
A group also keeps each point's monotonic time: wall times only label points (the clock can jump back
an hour at an NTP correction), windows such as "the last 10 s" are cut on the monotonic clock.
Reading slices the rings in C and keeps the per-point Python work to one pass, so a full 6 h ring
answers in milliseconds; `max_points` thins it to at most that many points, evenly spaced.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import OrderedDict
from collections.abc import Iterator

_NAN = float("nan")


def _ordered(ring: array[float], start: int, count: int, capacity: int) -> array[float]:
    """The `count` items of a ring starting at `start`, oldest first, as one new array (C-speed slices)."""
    end = start + count
    if end <= capacity:
        return ring[start:end]
    return ring[start:] + ring[: end - capacity]


def _rounded(value: float) -> float:
    # float32 storage: report 7 significant digits, not float32 noise such as 0.527999997.
    return float(f"{value:.7g}")


_BLOCK_POINTS = 256
JSON_CACHED_SERIES = 8
BlockCache = dict[int, tuple[float, float, str]]


class Window:
    """Points copied out of a ring, oldest first; reading them does not touch the ring."""

    __slots__ = ("block_cache", "capacity", "monotonic", "ring_start", "times", "values")

    def __init__(
        self,
        times: array[float],
        values: array[float],
        monotonic: array[float],
        *,
        ring_start: int = 0,
        capacity: int = 0,
        block_cache: BlockCache | None = None,
    ) -> None:
        self.times = times
        self.values = values
        self.monotonic = monotonic
        self.ring_start = ring_start  # ring position of the first point
        self.capacity = capacity
        self.block_cache = block_cache

    def points(self, since: float | None = None, max_points: int | None = None) -> list[tuple[float, float]]:
        """(wall time, value) with wall time >= `since`, without gaps (NaN), thinned to at most
        `max_points` evenly spaced points (the newest always kept)."""
        kept = [
            (t, v)
            for t, v in zip(self.times, self.values, strict=True)
            if v == v and (since is None or t >= since)  # v != v: NaN, a sample without this metric
        ]
        if max_points is not None and len(kept) > max_points:
            step = len(kept) / max_points
            kept = [kept[len(kept) - 1 - int(i * step)] for i in range(max_points - 1, -1, -1)]
        return [(t, float(f"{v:.7g}")) for t, v in kept]

    def points_json(self) -> str:
        """The points as the inside of a JSON array (`[t,v],[t,v],...`), the same values as `points()`.

        Formatting 2 floats a point is most of the cost of a long window, and a point never changes
        once written: whole 256-point blocks of the ring are formatted once and cached, each entry
        keyed by its first and last point's monotonic time (unique per write), so a block the ring has
        since overwritten simply misses. Only the blocks cut by the window's ends are formatted anew."""
        cache = self.block_cache
        parts: list[str] = []
        count = len(self.times)
        offset = 0
        while offset < count:
            position = (self.ring_start + offset) % self.capacity if self.capacity else offset
            block_end = min((position // _BLOCK_POINTS + 1) * _BLOCK_POINTS, self.capacity or count)
            length = min(block_end - position, count - offset)
            whole_block = cache is not None and position % _BLOCK_POINTS == 0 and length == block_end - position
            text: str | None = None
            if whole_block:
                assert cache is not None
                first, last = self.monotonic[offset], self.monotonic[offset + length - 1]
                hit = cache.get(position // _BLOCK_POINTS)
                if hit is not None and hit[0] == first and hit[1] == last:
                    text = hit[2]
            if text is None:
                text = _format_points(self.times[offset : offset + length], self.values[offset : offset + length])
                if whole_block:
                    assert cache is not None
                    cache[position // _BLOCK_POINTS] = (first, last, text)
            if text:
                parts.append(text)
            offset += length
        return ",".join(parts)


def _format_points(times: array[float], values: array[float]) -> str:
    return ",".join([f"[{t!r},{v:.7g}]" for t, v in zip(times, values, strict=True) if math.isfinite(v)])


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

    def _monotonic_ring(self) -> array[float] | None:
        """Each point's monotonic time, where the ring keeps them (None: its times are monotonic)."""
        return None

    def window(self, since_monotonic: float | None = None) -> Window:
        """A copy of the points with monotonic time >= `since_monotonic` (all without it): C-speed slices,
        cheap enough for the event loop; the copy can then be read in a worker thread while the ring
        goes on recording."""
        times, values, next_index, count = self._ring()
        start = (next_index - count) % self.capacity
        ordered_times = _ordered(times, start, count, self.capacity)
        ordered_values = _ordered(values, start, count, self.capacity)
        monotonic = self._monotonic_ring()
        ordered_monotonic = ordered_times if monotonic is None else _ordered(monotonic, start, count, self.capacity)
        first = 0
        if since_monotonic is not None:
            first = bisect.bisect_left(ordered_monotonic, since_monotonic)
            ordered_times, ordered_values = ordered_times[first:], ordered_values[first:]
            ordered_monotonic = ordered_monotonic[first:]
        return Window(
            ordered_times,
            ordered_values,
            ordered_monotonic,
            ring_start=(start + first) % self.capacity,
            capacity=self.capacity,
            block_cache=self._block_cache(),
        )

    def _block_cache(self) -> BlockCache | None:
        return None

    def points(
        self, since: float | None = None, *, since_monotonic: float | None = None, max_points: int | None = None
    ) -> list[tuple[float, float]]:
        """Points oldest first: see `window` and `Window.points`."""
        return self.window(since_monotonic).points(since, max_points)

    def recent(self, since: float, *, monotonic: bool = False) -> list[tuple[float, float]]:
        """Points with time >= `since`, oldest first, reading back from the newest: costs the window,
        not the whole buffer (rules read a few seconds of hours of history every tick). With
        `monotonic`, `since` and the returned times are the points' monotonic times."""
        times, values, _, _ = self._ring()
        if monotonic:
            times = self._monotonic_ring() or times
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

    def _monotonic_ring(self) -> array[float] | None:
        return self._group.monotonic_times

    def _block_cache(self) -> BlockCache | None:
        return self._group.history._json_cache_of(self)

    @property
    def nbytes(self) -> int:
        return self.values.itemsize * self.capacity


class _SourceGroup:
    __slots__ = ("capacity", "count", "history", "monotonic_times", "next_index", "series", "times")

    def __init__(self, capacity: int, history: History) -> None:
        self.capacity = capacity
        self.history = history
        self.times = array("d", bytes(8 * capacity))
        self.monotonic_times = array("d", bytes(8 * capacity))
        self.series: dict[str, _SharedTimesSeries] = {}
        self.next_index = 0
        self.count = 0

    def append(self, t: float, monotonic_s: float, metrics: dict[str, float], history: History) -> None:
        index = self.next_index
        self.times[index] = t
        self.monotonic_times[index] = monotonic_s
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
        # Formatted JSON blocks of the series read most recently (see Window.points_json): at most
        # JSON_CACHED_SERIES of them, ~30 bytes a point, so ~5 MB at worst for 6 h rings.
        self._json_caches: OrderedDict[_SharedTimesSeries, BlockCache] = OrderedDict()

    def _json_cache_of(self, series: _SharedTimesSeries) -> BlockCache:
        cache = self._json_caches.get(series)
        if cache is None:
            cache = self._json_caches[series] = {}
            while len(self._json_caches) > JSON_CACHED_SERIES:
                self._json_caches.popitem(last=False)
        else:
            self._json_caches.move_to_end(series)
        return cache

    def _has_room(self) -> bool:
        return self._metric_count < self.max_metrics

    def record(self, t: float, metrics: dict[str, float], monotonic_s: float | None = None) -> None:
        """Record one sample's metrics (names `<source>.<field>`), all taken at wall time `t` and
        monotonic time `monotonic_s` (default: `t`, for callers whose times never jump)."""
        if monotonic_s is None:
            monotonic_s = t
        by_source: dict[str, dict[str, float]] = {}
        for name, value in metrics.items():
            by_source.setdefault(name.partition(".")[0], {})[name] = value
        for source, values in by_source.items():
            group = self._groups.get(source)
            if group is None:
                group = self._groups[source] = _SourceGroup(self.capacity, self)
            group.append(t, monotonic_s, values, self)

    def metrics(self) -> list[str]:
        return sorted(name for group in self._groups.values() for name in group.series)

    def series(self, name: str) -> _SeriesReader | None:
        group = self._groups.get(name.partition(".")[0])
        return None if group is None else group.series.get(name)

    @property
    def nbytes(self) -> int:
        return sum(
            2 * group.times.itemsize * group.capacity + sum(s.nbytes for s in group.series.values())
            for group in self._groups.values()
        )

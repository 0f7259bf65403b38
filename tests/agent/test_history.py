"""Bounded ring buffers: history never grows past its capacity, however long the stream runs."""

from __future__ import annotations

import itertools
import json

from agent.history import History, RingSeries


def test_ring_keeps_the_newest_points_in_order_once_full() -> None:
    series = RingSeries(capacity=3)
    for t in range(5):
        series.append(float(t), t * 10.0)
    assert series.points() == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]
    assert series.latest() == (4.0, 40.0)
    assert len(series) == 3


def test_points_since_filters_by_time() -> None:
    series = RingSeries(capacity=10)
    for t in range(6):
        series.append(float(t), 1.5)
    assert [t for t, _ in series.points(since=3.5)] == [4.0, 5.0]


def test_memory_is_allocated_once_and_stays_flat() -> None:
    history = History(capacity=100)
    history.record(0.0, {"a.x": 1.0, "a.y": 2.0})
    size_before = history.nbytes
    for t in range(10_000):
        history.record(float(t), {"a.x": float(t), "a.y": 1.0})
    # One source "a": shared float64 wall and monotonic time rings plus a float32 value ring per metric.
    assert history.nbytes == size_before == 2 * 100 * 8 + 2 * 100 * 4
    assert len(history.series("a.x") or []) == 100


def test_history_refuses_unbounded_numbers_of_metrics() -> None:
    history = History(capacity=4, max_metrics=3)
    history.record(0.0, {f"m{i}": 1.0 for i in range(10)})
    assert len(history.metrics()) == 3


def test_values_read_back_without_float32_noise() -> None:
    series = RingSeries(capacity=2)
    series.append(1.0, 0.528)
    assert series.points() == [(1.0, 0.528)]


def test_metrics_of_one_source_share_times_and_gaps_are_skipped() -> None:
    history = History(capacity=10)
    history.record(1.0, {"obs.congestion": 0.1, "obs.bitrate": 2500.0})
    history.record(2.0, {"obs.bitrate": 2400.0})  # congestion missing from this sample
    history.record(3.0, {"obs.congestion": 0.3, "obs.bitrate": 2300.0, "system.cpu": 0.5})
    congestion = history.series("obs.congestion")
    assert congestion is not None
    assert congestion.points() == [(1.0, 0.1), (3.0, 0.3)]
    assert congestion.recent(since=2.0) == [(3.0, 0.3)]
    assert (history.series("obs.bitrate") or RingSeries(1)).latest() == (3.0, 2300.0)
    assert history.metrics() == ["obs.bitrate", "obs.congestion", "system.cpu"]


def test_a_metric_first_seen_late_has_no_invented_past() -> None:
    history = History(capacity=4)
    for t in range(6):
        history.record(float(t), {"s.a": 1.0})
    history.record(6.0, {"s.a": 1.0, "s.b": 2.0})
    series = history.series("s.b")
    assert series is not None and series.points() == [(6.0, 2.0)]


def test_max_points_thins_evenly_and_keeps_the_newest_point() -> None:
    series = RingSeries(capacity=1000)
    for t in range(1000):
        series.append(float(t), float(t))
    thinned = series.points(max_points=10)
    assert len(thinned) == 10 and thinned[-1] == (999.0, 999.0)
    gaps = {b[0] - a[0] for a, b in itertools.pairwise(thinned)}
    assert gaps == {100.0}


def test_the_cached_json_of_a_window_says_what_points_says_as_the_ring_wraps() -> None:
    history = History(capacity=1000)
    for t in range(3000):
        value = float("nan") if t % 7 == 0 else t / 3
        history.record(1e9 + t, {"a.x": value, "a.y": 1.0}, monotonic_s=float(t))
        if t % 450 == 0:
            series = history.series("a.x")
            assert series is not None
            for since in (None, float(t - 10), float(t - 600)):
                window = series.window(since)
                assert json.loads(f"[{window.points_json()}]") == [list(p) for p in window.points()]


def test_windows_are_cut_on_the_monotonic_clock_not_on_wall_labels() -> None:
    history = History(capacity=100)
    for t in range(20):
        wall = 1e9 + t - (3600 if t >= 10 else 0)  # the wall clock set back an hour half way
        history.record(wall, {"a.x": float(t)}, monotonic_s=500.0 + t)
    series = history.series("a.x")
    assert series is not None
    assert [v for _, v in series.points(since_monotonic=515.0)] == [15.0, 16.0, 17.0, 18.0, 19.0]

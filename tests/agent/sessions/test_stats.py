"""The bounded-memory statistics behind session summaries, checked against exact answers."""

from __future__ import annotations

import random

from agent.sessions.stats import SKETCH_RELATIVE_ACCURACY, CounterDelta, QuantileSketch, Running


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def test_sketch_quantiles_are_within_its_relative_accuracy_of_the_exact_ones() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(15, 0.4) for _ in range(20_000)]  # bitrates around 3 Mb/s
    sketch = QuantileSketch()
    for value in values:
        sketch.add(value)
    for q in (0.05, 0.5, 0.95):
        exact = _exact(values, q)
        estimate = sketch.quantile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= SKETCH_RELATIVE_ACCURACY * exact * 1.01


def test_sketch_memory_grows_with_the_range_of_values_not_their_count() -> None:
    sketch = QuantileSketch()
    rng = random.Random(1)
    for _ in range(21_600):  # six hours of 1 Hz ticks
        sketch.add(rng.uniform(2_000_000, 8_000_000))
    assert len(sketch.buckets) < 80  # log(4) / log(1.0202) ≈ 70 buckets


def test_zeros_pull_low_quantiles_to_zero_and_an_empty_sketch_says_none() -> None:
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None
    for value in [0.0] * 10 + [1000.0] * 90:
        sketch.add(value)
    assert sketch.quantile(0.05) == 0.0
    median = sketch.quantile(0.5)
    assert median is not None and abs(median - 1000) <= 10


def test_running_mean_min_max() -> None:
    running = Running()
    assert running.mean is None and running.min is None and running.max is None
    for value in (3.0, 1.0, 2.0):
        running.add(value)
    assert (running.mean, running.min, running.max) == (2.0, 1.0, 3.0)


def test_counter_delta_counts_from_the_stream_start_and_survives_a_reset() -> None:
    counter = CounterDelta()
    for value in (100, 105, 110, 2, 7):  # the encoder restarted its output after 110
        counter.add(value)
    assert counter.total == 110 + 7

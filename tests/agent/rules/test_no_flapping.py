"""Property tests: noisy input around a threshold does not make alerts flap."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.agent.rules.test_engine import CPU_RULE, run_cpu

ratios = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=0.86, max_value=0.94, allow_nan=False), min_size=20, max_size=240))
def test_noise_past_the_warning_threshold_raises_once_and_never_clears(values: list[float]) -> None:
    # Anywhere between just past warning (0.85) and just below critical (0.95).
    feed = run_cpu(values)
    kinds = [change for _, change, _ in feed.events()]
    assert kinds.count("raised") <= 1
    assert "cleared" not in kinds
    assert all(severity == "warning" for _, _, severity in feed.events())


@settings(max_examples=150, deadline=None)
@given(st.lists(ratios, min_size=1, max_size=300))
def test_every_raise_and_clear_is_earned_by_the_input_and_they_alternate(values: list[float]) -> None:
    feed = run_cpu(values)
    events = [(t, change) for t, change, _ in feed.events() if change in ("raised", "cleared")]
    expected_next = "raised"
    last_t: float | None = None
    for t, change in events:
        assert change == expected_next, f"{change} at {t} while expecting {expected_next}: {events}"
        i = int(t)
        if change == "raised":
            window = values[i - int(CPU_RULE.for_s) : i + 1]
            assert len(window) == CPU_RULE.for_s + 1 and all(v > CPU_RULE.warning for v in window)  # type: ignore[operator]
            if last_t is not None:
                assert t - last_t >= CPU_RULE.for_s
            expected_next = "cleared"
        else:
            window = values[i - int(CPU_RULE.clear_duration_s) : i + 1]
            assert all(v <= CPU_RULE.warning for v in window)  # type: ignore[operator]
            assert last_t is not None and t - last_t >= CPU_RULE.clear_duration_s
            expected_next = "raised"
        last_t = t


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([0.74, 0.96]), min_size=30, max_size=200))
def test_values_jumping_between_clear_and_critical_change_severity_rarely(values: list[float]) -> None:
    # However the input jumps, severity changes of one alert are at least clear_for_s apart.
    feed = run_cpu(values)
    times = [t for t, change, _ in feed.events() if change in ("updated", "cleared", "raised")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= min(CPU_RULE.for_s, CPU_RULE.clear_duration_s) for gap in gaps), feed.events()

"""The one backoff helper: doubling, capped, jittered down, never sooner than Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.backoff import Backoff, parse_retry_after


def test_waits_double_from_the_first_and_stop_at_the_cap_without_jitter() -> None:
    backoff = Backoff(0.5, 4.0, jitter_ratio=0.0)
    assert [backoff.next_s() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_s() == 0.5


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.999])
def test_jitter_only_shortens_a_wait_and_by_at_most_its_ratio(fraction: float) -> None:
    backoff = Backoff(1.0, 8.0, jitter_ratio=0.5, random_fraction=lambda: fraction)
    for ceiling in (1.0, 2.0, 4.0, 8.0, 8.0):
        wait = backoff.next_s()
        assert ceiling * 0.5 <= wait <= ceiling
        assert wait == pytest.approx(ceiling * (1 - 0.5 * fraction))


def test_retry_after_is_honoured_beyond_the_backoff_but_capped() -> None:
    backoff = Backoff(1.0, 8.0, jitter_ratio=0.0, retry_after_max_s=120.0)
    assert backoff.next_s(retry_after_s=30.0) == 30.0
    assert backoff.next_s(retry_after_s=0.1) == 2.0  # a shorter Retry-After does not hurry us
    assert backoff.next_s(retry_after_s=10_000.0) == 120.0


def test_a_thousand_failures_stay_at_the_cap() -> None:
    backoff = Backoff(1.0, 30.0, jitter_ratio=0.0)
    assert max(backoff.next_s() for _ in range(1000)) == 30.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Sat, 05 Dec 2026 09:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sat, 05 Dec 2026 08:00:00 GMT", now) == 0.0  # in the past: now
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(5.0, 1.0)

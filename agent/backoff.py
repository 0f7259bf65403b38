"""How long to wait before trying again: exponential, capped, jittered, and never sooner than the peer asked.

One helper for every retry loop (the task supervisor, the shipper, the notifier, reconnects), so they all
back off the same way: attempt n waits `first_s * 2**(n-1)` capped at `max_s`, jittered down by up to
`jitter_ratio` (so agents that failed together do not come back in lockstep), and at least a server's
Retry-After (seconds or an HTTP date; capped by `retry_after_max_s`). Not for deciding whether to retry.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Backoff:
    """`next_s()` after each failure gives the wait before the next attempt; `reset()` after a success."""

    def __init__(
        self,
        first_s: float = 1.0,
        max_s: float = 30.0,
        *,
        jitter_ratio: float = 0.5,
        retry_after_max_s: float = 3600.0,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < first_s <= max_s or not 0 <= jitter_ratio <= 1:
            raise ValueError("a backoff needs 0 < first_s <= max_s and 0 <= jitter_ratio <= 1")
        self.first_s = first_s
        self.max_s = max_s
        self.jitter_ratio = jitter_ratio
        self.retry_after_max_s = retry_after_max_s
        self._random = random_fraction
        self.failures = 0

    def next_s(self, retry_after_s: float | None = None) -> float:
        """Count one more failure and return how long to wait (seconds)."""
        self.failures += 1
        ceiling = min(self.max_s, self.first_s * 2.0 ** min(self.failures - 1, 64))
        delay = ceiling * (1.0 - self.jitter_ratio * self._random())
        if retry_after_s is not None:
            delay = max(delay, min(max(retry_after_s, 0.0), self.retry_after_max_s))
        return delay

    def reset(self) -> None:
        self.failures = 0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (RFC 9110: delay-seconds or an HTTP date) as seconds from `now`; None if absent
    or unreadable (the caller's own backoff applies then)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

"""A figure measured from noisy readings, held steady: the link rate a bitrate suggestion is built on.

Two rules, shared by the uplink tracker (the kernel's acknowledged bytes) and the capacity tracker (a relay's
or encoder's output while backlogged): a first figure only once enough readings agree (most of them near
their median, whose value it is), and a new figure only when the agreed value has stayed beyond a margin of
the held one, on the same side, for seconds. One odd reading neither makes nor moves the figure, so a
suggestion built on it does not jump while the evidence holds still. Sans-I/O: the caller passes the time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

AGREE_MARGIN = 0.15  # readings within this ratio of their median agree ...
AGREE_SHARE = 0.75  # ... and this share of them must
CHANGE_RATIO = 0.2  # a held figure moves only when the agreed value is this far off ...
SETTLE_S = 3.0  # ... for this long, all the way, on the same side


def agreed(values: Sequence[float], *, margin: float = AGREE_MARGIN, share: float = AGREE_SHARE) -> float | None:
    """The median of the values near their median, when at least `share` of them are; else None."""
    if not values:
        return None
    median = statistics.median(values)
    if median <= 0:
        return None
    agreeing = [value for value in values if abs(value / median - 1) <= margin]
    if len(agreeing) < share * len(values):
        return None
    return statistics.median(agreeing)


@dataclass
class HeldFigure:
    """Offer the agreed value of each reading; `value` is the figure to show (None until the first)."""

    change_ratio: float = CHANGE_RATIO
    settle_s: float = SETTLE_S
    value: float | None = None
    _moved_since: float | None = None
    _moved_up: bool = False

    def offer(self, now_s: float, candidate: float | None) -> bool:
        """True when `value` changed. None (nothing agreed on this time) changes nothing."""
        if candidate is None:
            return False
        if self.value is not None:
            if abs(candidate / self.value - 1) < self.change_ratio:
                self._moved_since = None
                return False  # the same link: keep the same figure
            up = candidate > self.value
            if self._moved_since is None or up != self._moved_up:
                self._moved_since, self._moved_up = now_s, up
            if now_s - self._moved_since < self.settle_s:
                return False  # a new figure only once the link has really changed
        self._moved_since = None
        self.value = candidate
        return True

    def clear(self) -> None:
        self.value = self._moved_since = None

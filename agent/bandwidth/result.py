"""What every bandwidth backend shares: 1-second windows of bytes moved, and the result they become.

Backends only count bytes (`ByteMeter.add`) and say what they measured against; the sustained figure,
the recommendation and the rest of `BandwidthResult` are computed here once, the same way for all.
Not for the transfers themselves: those live in one module per backend.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime

from agent.models import BandwidthResult, utc_now
from agent.models.reports import BandwidthBackend
from agent.settings import BandwidthSettings

WINDOW_S = 1.0


class ByteMeter:
    """A thread-safe byte counter that is read once per window (worker threads count, asyncio samples)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._clock = clock
        self.started: float | None = None
        self._marks: list[tuple[float, int]] = []

    def add(self, count: int) -> None:
        with self._lock:
            self._total += count

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def set_total(self, total: int) -> None:
        """For counters kept elsewhere (the kernel's bytes acked): the meter mirrors them."""
        with self._lock:
            self._total = total

    def mark(self) -> None:
        """Record (now, total): called once per window by `sample_windows`."""
        now = self._clock()
        if self.started is None:
            self.started = now
        self._marks.append((now, self.total))

    def windows_bps(self) -> list[float]:
        """Rate of each interval between consecutive marks, bits per second."""
        rates = []
        for (t0, b0), (t1, b1) in itertools.pairwise(self._marks):
            if t1 > t0:
                rates.append((b1 - b0) * 8 / (t1 - t0))
        return rates

    @property
    def elapsed_s(self) -> float:
        if len(self._marks) < 2:
            return 0.0
        return self._marks[-1][0] - self._marks[0][0]


async def sample_windows(
    meter: ByteMeter,
    duration_s: float,
    on_window: Callable[[float, float], None] | None = None,
    refresh: Callable[[], None] | None = None,
    finished: Callable[[], bool] | None = None,
) -> None:
    """Mark `meter` every second for `duration_s`, calling `on_window(elapsed_s, rate_bps)` after each.

    `refresh` runs before each mark (to copy a counter kept elsewhere); sampling ends early once
    `finished()` says the transfer is over, so idle seconds after it never count as windows.
    """
    if refresh is not None:
        refresh()
    meter.mark()
    start = time.monotonic()
    windows = max(1, math.ceil(duration_s / WINDOW_S - 1e-9))
    for index in range(1, windows + 1):
        await asyncio.sleep(max(0.0, start + index * WINDOW_S - time.monotonic()))
        if finished is not None and finished():
            return
        if refresh is not None:
            refresh()
        meter.mark()
        if on_window is not None:
            rates = meter.windows_bps()
            on_window(time.monotonic() - start, rates[-1] if rates else 0.0)


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * pct / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ramp_up_windows(settings: BandwidthSettings, duration_s: float) -> int:
    """Windows left out at the start: `ramp_up_s`, but never more than 40% of a short test."""
    return min(round(settings.ramp_up_s / WINDOW_S), int(duration_s / WINDOW_S / 2.5))


def sustained_bps(windows: list[float], skip: int, pct: float) -> float | None:
    steady = windows[skip:] or windows
    return percentile(steady, pct) if steady else None


def recommended_video_kbps(upload_bps: float | None, settings: BandwidthSettings) -> int | None:
    if upload_bps is None:
        return None
    return max(0, int(upload_bps * settings.headroom_ratio / 1000 - settings.audio_bitrate_kbps))


def build_result(
    settings: BandwidthSettings,
    *,
    backend: BandwidthBackend,
    target: str,
    started_at: datetime,
    windows_bps: list[float],
    measured_s: float,
    bytes_sent: int,
    skip_windows: int,
    download_bps: float | None = None,
    latency_ms: float | None = None,
    latency_under_load_ms: float | None = None,
    jitter_ms: float | None = None,
    error: str | None = None,
) -> BandwidthResult:
    upload = sustained_bps(windows_bps, skip_windows, settings.sustained_percentile) if windows_bps else None
    if upload is not None and upload <= 0:
        upload = 0.0
    return BandwidthResult(
        backend=backend,
        target=target,
        started_at=started_at,
        finished_at=utc_now(),
        ok=error is None and upload is not None,
        error=error if error is not None or upload is not None else "no upload was measured",
        upload_bps=upload,
        upload_peak_bps=max(windows_bps) if windows_bps else None,
        download_bps=download_bps,
        latency_ms=latency_ms,
        latency_under_load_ms=latency_under_load_ms,
        jitter_ms=jitter_ms,
        bytes_sent=bytes_sent,
        duration_s=round(measured_s, 3),
        headroom_ratio=settings.headroom_ratio,
        audio_bitrate_kbps=settings.audio_bitrate_kbps,
        recommended_video_kbps=recommended_video_kbps(upload, settings),
        samples_bps=[round(rate, 1) for rate in windows_bps],
    )


def failed_result(
    settings: BandwidthSettings, *, backend: BandwidthBackend, target: str, started_at: datetime, error: str
) -> BandwidthResult:
    return build_result(
        settings,
        backend=backend,
        target=target,
        started_at=started_at,
        windows_bps=[],
        measured_s=0.0,
        bytes_sent=0,
        skip_windows=0,
        error=error,
    )


def jitter_of(latencies_ms: list[float]) -> float | None:
    """Mean absolute difference of consecutive latencies (what speed tests call jitter)."""
    if len(latencies_ms) < 2:
        return None
    diffs = [abs(b - a) for a, b in itertools.pairwise(latencies_ms)]
    return sum(diffs) / len(diffs)

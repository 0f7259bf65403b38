"""What an ffmpeg publisher gets out, from its -progress figures: the throughput (bytes written, less what the
kernel still holds for its connection) and its speed (media time per wall second), both over the last seconds.

Both the derived metrics (agent/rules/derived.py) and the capacity estimate (agent/net/capacity.py) read them:
an ffmpeg paced by `-re` that produces slower than real time is blocked on its socket, and then what it gets
out is what the link carries. Sans-I/O: one `update` per snapshot.
"""

from __future__ import annotations

from collections import deque

from agent.models import HealthSnapshot
from agent.models.uplink import UplinkSample

# Rates are averaged over this window: long enough to average out keyframes and muxer bursts, short enough
# that a collapsing uplink shows within two ticks.
THROUGHPUT_WINDOW_S = 2.0
MIN_EVIDENCE_S = 1.5
BLOCKED_SPEED_RATIO = 0.95  # slower than this, ffmpeg is held back by its output


class FfmpegRates:
    def __init__(self) -> None:
        self._bytes: deque[tuple[float, int]] = deque(maxlen=64)  # (time, bytes through so far)
        self._written = 0
        self._media: deque[tuple[float, float]] = deque(maxlen=64)  # (time, media time produced)
        self.throughput_bps: float | None = None
        self.recent_bps: float | None = None  # between the last two readings at least half a second apart
        self.speed_ratio: float | None = None

    @property
    def blocked(self) -> bool:
        return self.speed_ratio is not None and self.speed_ratio < BLOCKED_SPEED_RATIO

    def update(self, snapshot: HealthSnapshot) -> None:
        self.throughput_bps = self._throughput(snapshot)
        self.recent_bps = self._recent()
        self.speed_ratio = self._speed(snapshot)

    def _recent(self) -> float | None:
        if len(self._bytes) < 2:
            return None
        t, through = self._bytes[-1]
        for earlier_t, earlier in reversed(list(self._bytes)[:-1]):
            if t - earlier_t >= 0.5:
                return (through - earlier) * 8 / (t - earlier_t)
        return None

    def _speed(self, snapshot: HealthSnapshot) -> float | None:
        """ffmpeg's own `speed` is averaged since it started, so a slow start drags it down for the
        whole run; this is the same figure over the last window only."""
        ffmpeg = snapshot.ffmpeg
        if ffmpeg is None or ffmpeg.ended or ffmpeg.out_time_s is None:
            self._media.clear()
            return None
        t = ffmpeg.taken_at.timestamp()
        if not self._media or t > self._media[-1][0]:
            if self._media and ffmpeg.out_time_s < self._media[-1][1]:
                self._media.clear()
            self._media.append((t, ffmpeg.out_time_s))
        while len(self._media) > 2 and t - self._media[1][0] >= THROUGHPUT_WINDOW_S:
            self._media.popleft()
        first_t, first_out = self._media[0]
        if t - first_t < MIN_EVIDENCE_S:
            return None
        return (ffmpeg.out_time_s - first_out) / (t - first_t)

    def _throughput(self, snapshot: HealthSnapshot) -> float | None:
        ffmpeg = snapshot.ffmpeg
        if ffmpeg is None or ffmpeg.ended or ffmpeg.total_size_bytes is None:
            self._bytes.clear()
            return None
        t = ffmpeg.taken_at.timestamp()
        # ffmpeg counts what it wrote to the socket; what still waits in the kernel's queue (up to
        # megabytes of send buffer while the uplink falls behind) has not got through yet.
        through = ffmpeg.total_size_bytes - _queued_in_kernel(snapshot.uplink, t)
        if not self._bytes or t > self._bytes[-1][0]:
            if self._bytes and ffmpeg.total_size_bytes < self._written:
                self._bytes.clear()  # a new ffmpeg run started counting from zero
            self._written = ffmpeg.total_size_bytes
            self._bytes.append((t, through))
        # Keep the newest reading that is at least a window old as the start of the window.
        while len(self._bytes) > 2 and t - self._bytes[1][0] >= THROUGHPUT_WINDOW_S:
            self._bytes.popleft()
        first_t, first_bytes = self._bytes[0]
        if t - first_t < MIN_EVIDENCE_S:
            return None  # not enough wall time yet to say anything honest
        return (self._bytes[-1][1] - first_bytes) * 8 / (t - first_t)


def _queued_in_kernel(uplink: UplinkSample | None, at_s: float) -> int:
    """Bytes the encoder wrote that the kernel still holds (unsent, or sent and not yet acknowledged), from
    the uplink source's reading of that connection when it is within a second of `at_s`; else 0."""
    if uplink is None or uplink.state not in ("ok", "congested") or abs(uplink.taken_at.timestamp() - at_s) > 1.0:
        return 0
    return (uplink.unsent_bytes or 0) + (uplink.unacked_bytes or 0)

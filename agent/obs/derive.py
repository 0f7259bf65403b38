"""What OBS's raw counters mean for the stream: ratios over a sliding window and since the stream started.

OBS reports cumulative counters (GetStats: since OBS started; GetStreamStatus: since the stream output
started). Users need rates: "how many frames did the network drop in the last 10 s". `ObsDeriver` keeps a
short window of readings and turns each new reading into an `ObsSample`. Counters that go backwards (OBS or
the stream restarted) start a new baseline instead of producing negative rates. No I/O, no clock of its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from agent.models import EncoderSettings, ObsSample

DEFAULT_WINDOW_S = 10.0
BITRATE_SPAN_S = 1.0  # the actual bitrate is measured over at least this long, so 4 Hz polling does not jitter

# StreamStateChanged outputState values (obs-websocket v5).
STATE_STARTING = "OBS_WEBSOCKET_OUTPUT_STARTING"
STATE_STARTED = "OBS_WEBSOCKET_OUTPUT_STARTED"
STATE_STOPPING = "OBS_WEBSOCKET_OUTPUT_STOPPING"
STATE_STOPPED = "OBS_WEBSOCKET_OUTPUT_STOPPED"
STATE_RECONNECTING = "OBS_WEBSOCKET_OUTPUT_RECONNECTING"
STATE_RECONNECTED = "OBS_WEBSOCKET_OUTPUT_RECONNECTED"


@dataclass(frozen=True)
class _Reading:
    at: float
    network_skipped: int
    network_total: int
    encoding_skipped: int
    encoding_total: int
    rendering_missed: int
    rendering_total: int
    output_bytes: int

    def went_backwards_from(self, before: _Reading) -> bool:
        return any(
            getattr(self, name) < getattr(before, name)
            for name in (
                "network_skipped",
                "network_total",
                "encoding_skipped",
                "encoding_total",
                "rendering_missed",
                "rendering_total",
                "output_bytes",
            )
        )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 5) if whole > 0 else None


def _int_field(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def _float_field(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class ObsDeriver:
    """Turns successive (GetStats, GetStreamStatus) replies into `ObsSample`s."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.window_s = window_s
        self._window: deque[_Reading] = deque()
        # OBS's congestion figure swings between 0 and 1 while it drops frames to empty its buffer: its mean
        # over the window holds while a stream fails, where the raw value never stays above a threshold.
        self._congestion: deque[tuple[float, float]] = deque()
        self._stream_baseline: _Reading | None = None
        self._reconnecting_event = False
        self.baseline_resets = 0

    def on_stream_state(self, output_state: str, output_active: bool) -> None:
        """A StreamStateChanged event: OBS keeps outputActive true while reconnecting, so trust the state."""
        if output_state == STATE_RECONNECTING:
            self._reconnecting_event = True
        elif output_state in (STATE_RECONNECTED, STATE_STARTED, STATE_STOPPED, STATE_STOPPING) or not output_active:
            self._reconnecting_event = False
            if output_state == STATE_STARTED:
                self._stream_baseline = None  # a new stream: "since the stream started" starts here

    def update(
        self,
        now: float,
        stats: dict[str, Any],
        stream_status: dict[str, Any],
        settings: EncoderSettings | None = None,
    ) -> ObsSample:
        reading = _Reading(
            at=now,
            network_skipped=_int_field(stream_status, "outputSkippedFrames"),
            network_total=_int_field(stream_status, "outputTotalFrames"),
            encoding_skipped=_int_field(stats, "outputSkippedFrames"),
            encoding_total=_int_field(stats, "outputTotalFrames"),
            rendering_missed=_int_field(stats, "renderSkippedFrames"),
            rendering_total=_int_field(stats, "renderTotalFrames"),
            output_bytes=_int_field(stream_status, "outputBytes"),
        )
        active = bool(stream_status.get("outputActive"))
        reconnecting = bool(stream_status.get("outputReconnecting")) or (active and self._reconnecting_event)
        if not active:
            self._reconnecting_event = False
        streaming = active
        if self._window and reading.went_backwards_from(self._window[-1]):
            self._window.clear()  # OBS or the stream restarted: a new baseline, never a negative rate
            self._stream_baseline = None
            self.baseline_resets += 1
        if streaming and self._stream_baseline is None:
            self._stream_baseline = reading
        if not streaming:
            self._stream_baseline = None
        self._window.append(reading)
        while len(self._window) > 2 and self._window[1].at <= now - self.window_s:
            self._window.popleft()  # keep one reading at or before the window's start
        oldest = self._window[0]

        baseline = self._stream_baseline
        configured_fps = settings.fps if settings is not None else None
        cpu_percent = _float_field(stats, "cpuUsage")
        duration_ms = _float_field(stream_status, "outputDuration")
        congestion = _float_field(stream_status, "outputCongestion")
        congestion_mean = self._congestion_mean(now, congestion if streaming else None)
        return ObsSample(
            connection="connected",
            streaming=streaming,
            reconnecting=reconnecting,
            stream_duration_s=round(duration_ms / 1000.0, 3) if streaming and duration_ms is not None else None,
            output_bitrate_bps=self._bitrate_bps(reading) if streaming else None,
            output_bytes_total=reading.output_bytes,
            output_congestion_ratio=round(min(1.0, max(0.0, congestion)), 4)
            if streaming and congestion is not None
            else None,
            output_congestion_ratio_10s=congestion_mean,
            frames_dropped_network_ratio_10s=_ratio(
                reading.network_skipped - oldest.network_skipped, reading.network_total - oldest.network_total
            )
            if streaming
            else None,
            # OBS's stream-output counters start at zero with each stream: they already are "since the start".
            frames_dropped_network_ratio_stream=_ratio(reading.network_skipped, reading.network_total)
            if streaming
            else None,
            frames_dropped_network_total=reading.network_skipped,
            frames_output_total=reading.network_total,
            frames_skipped_encoding_ratio_10s=_ratio(
                reading.encoding_skipped - oldest.encoding_skipped, reading.encoding_total - oldest.encoding_total
            ),
            frames_skipped_encoding_ratio_stream=_ratio(
                reading.encoding_skipped - baseline.encoding_skipped, reading.encoding_total - baseline.encoding_total
            )
            if baseline is not None
            else None,
            frames_skipped_encoding_total=reading.encoding_skipped,
            frames_encoded_total=reading.encoding_total,
            frames_missed_rendering_ratio_10s=_ratio(
                reading.rendering_missed - oldest.rendering_missed, reading.rendering_total - oldest.rendering_total
            ),
            frames_missed_rendering_ratio_stream=_ratio(
                reading.rendering_missed - baseline.rendering_missed,
                reading.rendering_total - baseline.rendering_total,
            )
            if baseline is not None
            else None,
            frames_missed_rendering_total=reading.rendering_missed,
            frames_rendered_total=reading.rendering_total,
            obs_cpu_usage_ratio=round(cpu_percent / 100.0, 4) if cpu_percent is not None else None,
            obs_memory_bytes=int(memory_mb * 1024 * 1024)
            if (memory_mb := _float_field(stats, "memoryUsage")) is not None
            else None,
            active_fps=round(fps, 3) if (fps := _float_field(stats, "activeFps")) is not None else None,
            configured_fps=configured_fps,
            average_frame_render_ms=round(render_ms, 3)
            if (render_ms := _float_field(stats, "averageFrameRenderTime")) is not None
            else None,
            frame_budget_ms=round(1000.0 / configured_fps, 3) if configured_fps else None,
            settings=settings,
        )

    def _congestion_mean(self, now: float, congestion: float | None) -> float | None:
        if congestion is None:
            self._congestion.clear()
            return None
        self._congestion.append((now, min(1.0, max(0.0, congestion))))
        while self._congestion[0][0] <= now - self.window_s:
            self._congestion.popleft()
        return round(sum(value for _, value in self._congestion) / len(self._congestion), 4)

    def _bitrate_bps(self, reading: _Reading) -> float | None:
        before = None
        for candidate in reversed(self._window):
            if candidate is reading:
                continue
            before = candidate
            if candidate.at <= reading.at - BITRATE_SPAN_S:
                break
        if before is None or reading.at <= before.at:
            return None
        return round((reading.output_bytes - before.output_bytes) * 8 / (reading.at - before.at), 1)

"""Ratios, bitrate and baselines derived from OBS's counters: recorded replies first, then edge cases."""

from __future__ import annotations

from typing import Any

from agent.models import EncoderSettings
from agent.obs.derive import ObsDeriver
from tests.agent.obs.conftest import recorded_response


def _stats(encoded: int, skipped: int, rendered: int, missed: int, **extra: Any) -> dict[str, Any]:
    return {
        "outputTotalFrames": encoded,
        "outputSkippedFrames": skipped,
        "renderTotalFrames": rendered,
        "renderSkippedFrames": missed,
        **extra,
    }


def _status(total: int, skipped: int, sent_bytes: int, active: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "outputActive": active,
        "outputTotalFrames": total,
        "outputSkippedFrames": skipped,
        "outputBytes": sent_bytes,
        **extra,
    }


def test_recorded_live_stats_become_the_recorded_values(obs_recording: list[dict[str, Any]]) -> None:
    stats = recorded_response(obs_recording, "r7")["responseData"]
    status = recorded_response(obs_recording, "r8")["responseData"]
    settings = EncoderSettings(fps=30.0)
    sample = ObsDeriver().update(100.0, stats, status, settings)
    assert sample.connection == "connected" and sample.streaming and not sample.reconnecting
    assert sample.frames_output_total == status["outputTotalFrames"]
    assert sample.frames_dropped_network_total == status["outputSkippedFrames"]
    assert sample.frames_encoded_total == stats["outputTotalFrames"]
    assert sample.frames_rendered_total == stats["renderTotalFrames"]
    assert sample.frames_missed_rendering_total == stats["renderSkippedFrames"]
    assert sample.output_bytes_total == status["outputBytes"]
    assert sample.output_congestion_ratio == status["outputCongestion"]
    assert sample.stream_duration_s == status["outputDuration"] / 1000
    assert sample.obs_cpu_usage_ratio is not None
    assert abs(sample.obs_cpu_usage_ratio - stats["cpuUsage"] / 100) < 1e-4
    assert sample.active_fps is not None and abs(sample.active_fps - stats["activeFps"]) < 1e-3
    assert sample.average_frame_render_ms is not None
    assert abs(sample.average_frame_render_ms - stats["averageFrameRenderTime"]) < 1e-3
    assert sample.frame_budget_ms is not None and abs(sample.frame_budget_ms - 1000 / 30) < 1e-3
    assert sample.frames_dropped_network_ratio_stream == 0.0


def test_recorded_idle_stats_report_no_stream_and_no_network_ratio(obs_recording: list[dict[str, Any]]) -> None:
    sample = ObsDeriver().update(
        1.0,
        recorded_response(obs_recording, "r2")["responseData"],
        recorded_response(obs_recording, "r3")["responseData"],
    )
    assert not sample.streaming
    assert sample.output_bitrate_bps is None and sample.output_congestion_ratio is None
    assert sample.frames_dropped_network_ratio_10s is None


def test_ratios_cover_the_last_window_and_the_whole_stream_separately() -> None:
    deriver = ObsDeriver(window_s=10)
    # 20 s clean at 30 fps, then 10 s in which the network drops a third of the frames.
    for second in range(0, 21):
        sample = deriver.update(
            float(second), _stats(30 * second, 0, 30 * second, 0), _status(30 * second, 0, 300_000 * second)
        )
    assert sample.frames_dropped_network_ratio_10s == 0.0
    for second in range(21, 31):
        dropped = 10 * (second - 20)
        sample = deriver.update(
            float(second), _stats(30 * second, 0, 30 * second, 0), _status(30 * second, dropped, 300_000 * second)
        )
    assert sample.frames_dropped_network_ratio_10s is not None
    assert abs(sample.frames_dropped_network_ratio_10s - 100 / 300) < 1e-3
    assert sample.frames_dropped_network_ratio_stream is not None
    assert abs(sample.frames_dropped_network_ratio_stream - 100 / 900) < 1e-3
    assert sample.output_bitrate_bps == 300_000 * 8


def test_encoding_and_rendering_lag_are_told_apart_from_network_drops() -> None:
    deriver = ObsDeriver()
    deriver.update(0.0, _stats(0, 0, 0, 0), _status(0, 0, 0))
    sample = deriver.update(5.0, _stats(150, 15, 150, 30), _status(150, 0, 1000))
    assert sample.frames_skipped_encoding_ratio_10s == 0.1
    assert sample.frames_missed_rendering_ratio_10s == 0.2
    assert sample.frames_dropped_network_ratio_10s == 0.0


def test_counters_going_backwards_start_a_new_baseline_instead_of_negative_rates() -> None:
    deriver = ObsDeriver()
    for second in range(5):
        deriver.update(float(second), _stats(900 + 30 * second, 50, 900, 5), _status(900 + 30 * second, 40, 10**7))
    # OBS restarted: every counter starts again from a small number.
    sample = deriver.update(5.0, _stats(10, 0, 12, 0), _status(10, 0, 5000))
    assert deriver.baseline_resets == 1
    for value in (
        sample.frames_dropped_network_ratio_10s,
        sample.frames_skipped_encoding_ratio_10s,
        sample.frames_missed_rendering_ratio_10s,
        sample.output_bitrate_bps,
    ):
        assert value is None or value >= 0
    sample = deriver.update(6.0, _stats(40, 3, 42, 0), _status(40, 6, 130_000))
    assert sample.frames_dropped_network_ratio_10s == 0.2  # 6 of the 30 frames since the restart
    assert sample.frames_skipped_encoding_ratio_10s == 0.1
    assert sample.output_bitrate_bps == (130_000 - 5000) * 8


def test_reconnecting_event_is_trusted_while_obs_still_says_output_active() -> None:
    deriver = ObsDeriver()
    deriver.on_stream_state("OBS_WEBSOCKET_OUTPUT_RECONNECTING", True)
    sample = deriver.update(1.0, _stats(0, 0, 0, 0), _status(10, 0, 100, outputReconnecting=False))
    assert sample.reconnecting and sample.streaming
    deriver.on_stream_state("OBS_WEBSOCKET_OUTPUT_RECONNECTED", True)
    assert not deriver.update(2.0, _stats(0, 0, 0, 0), _status(20, 0, 200)).reconnecting

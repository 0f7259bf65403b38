"""Prometheus metric families of the encoder sources (OBS, ffmpeg), built from the latest snapshot.

Dropped frames are one counter family labelled by cause (network / encoding / rendering), so a single
query shows which one the viewers suffer from. Bytes and ratios, no bitrate in made-up units; no label
ever carries a scene name, a server or a key.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.models import HealthSnapshot


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield CounterMetricFamily(name, documentation, value=value)


def obs_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    obs = snapshot.obs
    if obs is None:
        return
    yield GaugeMetricFamily(
        "streamhealth_obs_connected",
        "1 while the agent has an obs-websocket session.",
        value=obs.connection == "connected",
    )
    if obs.connection != "connected":
        return
    yield GaugeMetricFamily("streamhealth_obs_streaming", "1 while OBS streams.", value=obs.streaming)
    yield GaugeMetricFamily(
        "streamhealth_obs_reconnecting", "1 while OBS reconnects to the ingest.", value=obs.reconnecting
    )
    dropped = CounterMetricFamily(
        "streamhealth_frames_dropped",
        "Frames lost, by cause: network (stream output), encoding (encoder lag), rendering (render lag).",
        labels=["cause"],
    )
    for cause, value in (
        ("network", obs.frames_dropped_network_total),
        ("encoding", obs.frames_skipped_encoding_total),
        ("rendering", obs.frames_missed_rendering_total),
    ):
        if value is not None:
            dropped.add_metric([cause], value)
    yield dropped
    ratio = GaugeMetricFamily(
        "streamhealth_frames_dropped_10s_ratio", "Share of frames lost over the last 10 s, by cause.", labels=["cause"]
    )
    for cause, share in (
        ("network", obs.frames_dropped_network_ratio_10s),
        ("encoding", obs.frames_skipped_encoding_ratio_10s),
        ("rendering", obs.frames_missed_rendering_ratio_10s),
    ):
        if share is not None:
            ratio.add_metric([cause], share)
    yield ratio
    frames = CounterMetricFamily(
        "streamhealth_obs_frames", "Frames OBS handled, by stage (output, encoded, rendered).", labels=["stage"]
    )
    for stage, value in (
        ("output", obs.frames_output_total),
        ("encoded", obs.frames_encoded_total),
        ("rendered", obs.frames_rendered_total),
    ):
        if value is not None:
            frames.add_metric([stage], value)
    yield frames
    yield from _gauge(
        "streamhealth_output_congestion_ratio", "OBS's stream output congestion, 0..1.", obs.output_congestion_ratio
    )
    if obs.streaming:
        yield from _counter(
            "streamhealth_output_sent_bytes",
            "Bytes the OBS stream output sent since it started.",
            obs.output_bytes_total,
        )
    yield from _gauge(
        "streamhealth_obs_cpu_usage_ratio", "OBS's own CPU use (1.0 = one core).", obs.obs_cpu_usage_ratio
    )
    yield from _gauge("streamhealth_obs_active_fps", "Frames per second OBS renders.", obs.active_fps)
    yield from _gauge("streamhealth_obs_configured_fps", "Frames per second OBS is set to.", obs.configured_fps)
    if obs.average_frame_render_ms is not None:
        yield GaugeMetricFamily(
            "streamhealth_obs_frame_render_seconds",
            "Average time OBS takes to render a frame.",
            value=obs.average_frame_render_ms / 1000.0,
        )
    yield GaugeMetricFamily(
        "streamhealth_obs_backup_scene_active",
        "1 while the backup plan holds the backup scene.",
        value=obs.backup_scene_active,
    )


def ffmpeg_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    ffmpeg = snapshot.ffmpeg
    if ffmpeg is None:
        return
    yield from _gauge(
        "streamhealth_ffmpeg_speed_ratio",
        "ffmpeg's speed since it started: below 1 it falls behind.",
        ffmpeg.speed_ratio,
    )
    yield from _gauge(
        "streamhealth_ffmpeg_speed_10s_ratio", "ffmpeg's speed over the last 10 s.", ffmpeg.speed_ratio_10s
    )
    yield from _counter("streamhealth_ffmpeg_frames", "Frames ffmpeg wrote.", ffmpeg.frame)
    yield from _counter("streamhealth_ffmpeg_frames_dropped", "Frames ffmpeg dropped.", ffmpeg.drop_frames_total)
    yield from _counter("streamhealth_ffmpeg_frames_duplicated", "Frames ffmpeg duplicated.", ffmpeg.dup_frames_total)
    yield from _gauge(
        "streamhealth_ffmpeg_frames_dropped_10s_ratio",
        "Share of frames ffmpeg dropped over the last 10 s.",
        ffmpeg.frames_dropped_ratio_10s,
    )
    yield from _counter("streamhealth_ffmpeg_output_bytes", "Bytes ffmpeg wrote.", ffmpeg.total_size_bytes)
    yield from _gauge(
        "streamhealth_ffmpeg_running", "1 until ffmpeg reported progress=end.", 0.0 if ffmpeg.ended else 1.0
    )


def encoder_process_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    """Whether the system source found an encoder process (its CPU and memory are in system_metrics)."""
    system = snapshot.system
    if system is None:
        return
    yield GaugeMetricFamily(
        "streamhealth_encoder_process_found",
        "1 when an OBS, Streamlabs, TikTok LIVE Studio or ffmpeg process runs.",
        value=system.encoder_process is not None,
    )


def stream_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    """The bitrate leaving the encoder against what it is set to send: the first panel people look at."""
    rate = GaugeMetricFamily(
        "streamhealth_stream_bytes_per_second",
        "Bytes per second leaving the encoder (x8 for the bitrate).",
        labels=["encoder"],
    )
    obs, ffmpeg = snapshot.obs, snapshot.ffmpeg
    if obs is not None and obs.streaming and obs.output_bitrate_bps is not None:
        rate.add_metric(["obs"], obs.output_bitrate_bps / 8)
    if ffmpeg is not None and not ffmpeg.ended and ffmpeg.bitrate_bps is not None:
        rate.add_metric(["ffmpeg"], ffmpeg.bitrate_bps / 8)
    yield rate
    settings = obs.settings if obs is not None else None
    if settings is not None and settings.video_bitrate_kbps is not None:
        target_kbps = settings.video_bitrate_kbps + (settings.audio_bitrate_kbps or 0)
        yield GaugeMetricFamily(
            "streamhealth_stream_target_bytes_per_second",
            "Video plus audio rate the encoder is set to send, in bytes per second (x8 for the bitrate).",
            value=target_kbps * 1000.0 / 8,
        )

"""Samples of the encoder sources: OBS Studio (obs-websocket v5) and ffmpeg (`-progress`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from agent.models.base import Contract, Sample

ObsConnection = Literal["connected", "connecting", "not_connected", "auth_failed", "kicked"]


class EncoderSettings(Contract):
    """What the encoder is configured to send: compared with the platform preset and the uplink."""

    video_bitrate_kbps: int | None = None
    audio_bitrate_kbps: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    keyframe_interval_s: float | None = Field(None, description="0 or None means the encoder's automatic choice.")
    video_encoder: str | None = None
    output_mode: str | None = Field(None, description="OBS: 'Simple' or 'Advanced'.")
    service: str | None = None
    server: str | None = Field(None, description="Ingest server URL, key redacted.")


class ObsSample(Sample):
    SOURCE: ClassVar[str] = "obs"
    NOT_HISTORY: ClassVar[frozenset[str]] = frozenset(
        {
            "frames_output_total",
            "frames_dropped_network_total",
            "frames_rendered_total",
            "frames_encoded_total",
            "output_bytes_total",
        }
    )

    connection: ObsConnection
    connection_detail: str | None = Field(None, description="Why not connected, and what to do.")
    streaming: bool = False
    reconnecting: bool = False
    stream_duration_s: float | None = None
    output_bitrate_bps: float | None = Field(
        None, description="Actual bits per second leaving OBS (delta of outputBytes)."
    )
    output_bytes_total: int | None = Field(None, description="Bytes the stream output sent since it started.")
    output_congestion_ratio: float | None = None
    output_congestion_ratio_10s: float | None = Field(
        None, description="Mean of OBS's congestion figure over the window: it swings 0..1 while OBS drops frames."
    )
    frames_dropped_network_ratio_10s: float | None = None
    frames_dropped_network_ratio_stream: float | None = None
    frames_dropped_network_total: int | None = None
    frames_output_total: int | None = None
    frames_skipped_encoding_ratio_10s: float | None = None
    frames_skipped_encoding_ratio_stream: float | None = None
    frames_skipped_encoding_total: int | None = None
    frames_encoded_total: int | None = None
    frames_missed_rendering_ratio_10s: float | None = None
    frames_missed_rendering_ratio_stream: float | None = None
    frames_missed_rendering_total: int | None = None
    frames_rendered_total: int | None = None
    obs_cpu_usage_ratio: float | None = Field(
        None, description="OBS's own CPU use, as OBS reports it, 0..1 of one core."
    )
    obs_memory_bytes: int | None = Field(None, description="OBS's own memory use, as OBS reports it.")
    active_fps: float | None = None
    configured_fps: float | None = None
    average_frame_render_ms: float | None = None
    frame_budget_ms: float | None = None
    settings: EncoderSettings | None = None
    program_scene: str | None = Field(None, description="The scene OBS is sending (known when the backup plan is on).")
    backup_scene_active: bool = Field(False, description="The backup plan switched to its backup scene.")
    backup_scene_reason: str | None = Field(None, description="Why the backup plan switched, or why it could not.")
    obs_websocket_version: str | None = None


class FfmpegSample(Sample):
    SOURCE: ClassVar[str] = "ffmpeg"
    NOT_HISTORY: ClassVar[frozenset[str]] = frozenset({"frame", "total_size_bytes"})

    frame: int | None = None
    fps: float | None = None
    bitrate_bps: float | None = None
    total_size_bytes: int | None = None
    out_time_s: float | None = None
    dup_frames_total: int | None = None
    drop_frames_total: int | None = None
    frames_dropped_ratio_10s: float | None = None
    speed_ratio: float | None = Field(None, description="Media time per wall time: below 1.0 the encoder falls behind.")
    speed_ratio_10s: float | None = Field(
        None, description="Media time per wall time over the last 10 s, as the agent saw progress arrive."
    )
    ended: bool = False
    via: Literal["file", "wrapper", "http"] | None = None

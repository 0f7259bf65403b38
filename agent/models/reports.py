"""Reports of on-demand work: bandwidth tests and preflight checks. In the log, the API and the TUI."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.base import SCHEMA_VERSION, Contract

BandwidthBackend = Literal["speedtest", "http", "rtmp"]
CheckStatus = Literal["pass", "warn", "fail", "skipped"]
Verdict = Literal["GO", "GO_WITH_WARNINGS", "NO_GO"]


class BandwidthResult(Contract):
    schema_version: int = SCHEMA_VERSION
    backend: BandwidthBackend
    target: str = Field(description="What was measured against (server name or ingest host:port), no key.")
    started_at: datetime
    finished_at: datetime
    ok: bool = True
    error: str | None = None
    upload_bps: float | None = Field(
        None, description="Sustained upload: a low percentile of 1 s windows after ramp-up."
    )
    upload_peak_bps: float | None = None
    download_bps: float | None = None
    latency_ms: float | None = None
    latency_under_load_ms: float | None = None
    jitter_ms: float | None = None
    bytes_sent: int = 0
    duration_s: float = 0.0
    headroom_ratio: float = 0.7
    audio_bitrate_kbps: int = 160
    recommended_video_kbps: int | None = Field(None, description="upload x headroom - audio, in kbit/s.")
    samples_bps: list[float] = Field(default_factory=list, description="Upload per 1 s window, bits per second.")


class PreflightCheck(Contract):
    name: str
    status: CheckStatus
    value: str | None = Field(None, description="What was measured, with its unit.")
    message: str
    suggestion: str | None = None


class RecommendedSettings(Contract):
    video_bitrate_kbps: int | None = None
    audio_bitrate_kbps: int | None = None
    resolution: str | None = None
    fps: int | None = None
    keyframe_interval_s: float | None = None
    video_encoder: str | None = None


class PreflightReport(Contract):
    schema_version: int = SCHEMA_VERSION
    platform: str
    started_at: datetime
    finished_at: datetime
    verdict: Verdict
    checks: list[PreflightCheck]
    recommended: RecommendedSettings
    bandwidth: BandwidthResult | None = None

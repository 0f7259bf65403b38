"""Derived metrics: figures no single source measures, computed once per tick from the snapshot, the
stream settings and the platform preset (upload headroom, throughput actually achieved, ...).

The rules and the playbook read them as `derived.<name>`; the engine keeps their history so trend
rules work on them too. Everything here is cheap arithmetic on the latest samples.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from agent.models import EncoderSettings, HealthSnapshot
from agent.net.encoder_rates import BLOCKED_SPEED_RATIO, THROUGHPUT_WINDOW_S, FfmpegRates
from agent.platforms import PlatformPreset
from agent.settings import Settings

DERIVED_METRICS: dict[str, str] = {
    "configured_bitrate_bps": "Video + audio bitrate the encoder is set to send (OBS settings, else stream.*).",
    "configured_video_kbps": "Video bitrate the encoder is set to send.",
    "audio_kbps": "Audio bitrate the encoder is set to send (OBS, stream.*, else the preset's).",
    "output_throughput_bps": "Bits per second actually leaving the encoder (OBS output, or ffmpeg's bytes over wall time).",
    "output_bitrate_ratio": "Throughput / configured bitrate: below 1 the uplink is not keeping up.",
    "upload_capacity_bps": "What the uplink carries (snapshot.upload_capacity, agent/net/capacity.py), at least.",
    "upload_headroom_ratio": "Measured upload capacity / configured bitrate (1.5 is comfortable); a bound gives none.",
    "uplink_backlog": "1 when the link shows a backlog (the kernel's view, the relay's queue, OBS's buffer, ffmpeg blocked).",
    "stream_live_s": "Seconds the stream has been live (OBS's output duration, else since the relay or ffmpeg began).",
    "stream_settled": "1 once the stream has been live STREAM_START_S: rate rules wait out an encoder's first seconds.",
    "frames_dropped_network_ratio_5s": "Share of OBS's frames dropped for the network over the last 5 s.",
    "output_congestion_ratio_5s": "Mean of OBS's congestion figure over the last 5 s.",
    "ffmpeg_speed_ratio": "Media time ffmpeg produced per wall second over the last 2 s (below 1: falling behind).",
    "render_budget_ratio": "OBS frame render time / frame budget.",
    "encoder_cpu_ratio": "Encoder process CPU as a share of the whole machine, 0..1.",
    "fps_ratio": "Frames per second achieved / configured.",
    "video_bitrate_preset_ratio": "Configured video bitrate / the preset's minimum for this resolution and frame rate.",
    "keyframe_interval_wrong": "1 when the keyframe interval does not suit the platform.",
    "recording_minutes_left": "Minutes of recording at the configured bitrate that fit in the free disk space.",
    "stream_down": "1 when the stream should be live (stream.expect_live) and is not.",
}

# OBS's first seconds send less than configured (and then catch up); a stream this young is not judged on rates.
STREAM_START_S = 10.0
# The shorter windows the alerts read: short enough that an alert clears within seconds of the trouble ending.
SHORT_WINDOW_S = 5.0
# Backlog evidence besides the uplink tracker's verdict: this much media in the relay's queue, or OBS's send
# buffer this far toward its drop threshold.
RELAY_BACKLOG_MS = 200
OBS_BACKLOG_CONGESTION_RATIO = 0.1
QUEUED_BACKLOG_S = 0.5


@dataclass(frozen=True)
class StreamTarget:
    """What the stream is meant to be when the encoder cannot tell us (settings.stream)."""

    video_bitrate_kbps: int | None = None
    audio_bitrate_kbps: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    keyframe_interval_s: float | None = None
    expect_live: bool = False

    def encoder_settings(self) -> EncoderSettings:
        """These figures as encoder settings, for checks that read an encoder's configuration."""
        return EncoderSettings(
            video_bitrate_kbps=self.video_bitrate_kbps,
            audio_bitrate_kbps=self.audio_bitrate_kbps,
            width=self.width,
            height=self.height,
            fps=self.fps,
            keyframe_interval_s=self.keyframe_interval_s,
        )


def stream_target(settings: Settings) -> StreamTarget:
    stream = settings.stream
    return StreamTarget(
        video_bitrate_kbps=stream.video_bitrate_kbps,
        audio_bitrate_kbps=stream.audio_bitrate_kbps,
        width=stream.width,
        height=stream.height,
        fps=stream.fps,
        keyframe_interval_s=stream.keyframe_interval_s,
        expect_live=stream.expect_live,
    )


class DerivedCalculator:
    """Computes the derived metrics tick by tick; remembers ffmpeg's byte counts to get its throughput."""

    def __init__(self, target: StreamTarget, preset: PlatformPreset) -> None:
        self.target = target
        self.preset = preset
        self._ffmpeg = FfmpegRates()
        self._obs_bitrates: deque[tuple[float, float]] = deque(maxlen=64)
        self._obs_frames: deque[tuple[float, int, int]] = deque(maxlen=64)  # (time, dropped, output) totals
        self._obs_congestion: deque[tuple[float, float]] = deque(maxlen=64)
        self._live_since: float | None = None  # relay / ffmpeg: when the stream was first seen live

    def compute(self, snapshot: HealthSnapshot) -> dict[str, float]:
        values: dict[str, float | None] = {}
        obs, ffmpeg, system = snapshot.obs, snapshot.ffmpeg, snapshot.system
        settings = obs.settings if obs is not None and obs.connection == "connected" else None

        video_kbps = (settings.video_bitrate_kbps if settings else None) or self.target.video_bitrate_kbps
        audio_kbps = (
            (settings.audio_bitrate_kbps if settings else None)
            or self.target.audio_bitrate_kbps
            or self.preset.audio.recommended_kbps
        )
        values["audio_kbps"] = float(audio_kbps)
        values["configured_video_kbps"] = float(video_kbps) if video_kbps else None
        configured_bps = (video_kbps + audio_kbps) * 1000.0 if video_kbps else None
        values["configured_bitrate_bps"] = configured_bps

        self._ffmpeg.update(snapshot)
        throughput = self._throughput(snapshot)
        values["output_throughput_bps"] = throughput
        ratio = throughput / configured_bps if throughput is not None and configured_bps else None
        values["output_bitrate_ratio"] = ratio

        capacity = snapshot.upload_capacity
        if capacity is not None:
            values["upload_capacity_bps"] = capacity.bps
            if not capacity.lower_bound and configured_bps:
                values["upload_headroom_ratio"] = capacity.bps / configured_bps
        values["ffmpeg_speed_ratio"] = self._ffmpeg.speed_ratio
        values["uplink_backlog"] = uplink_backlog(snapshot, values["ffmpeg_speed_ratio"], configured_bps)
        live_s = self._live_s(snapshot)
        values["stream_live_s"] = live_s
        values["stream_settled"] = None if live_s is None else float(live_s >= STREAM_START_S)
        values["frames_dropped_network_ratio_5s"] = self._obs_drop_ratio(snapshot)
        values["output_congestion_ratio_5s"] = self._obs_congestion_mean(snapshot)

        if obs is not None and obs.average_frame_render_ms is not None and obs.frame_budget_ms:
            values["render_budget_ratio"] = obs.average_frame_render_ms / obs.frame_budget_ms
        if system is not None and system.encoder_cpu_core_ratio is not None and system.cpu_count_logical:
            values["encoder_cpu_ratio"] = system.encoder_cpu_core_ratio / system.cpu_count_logical

        width = (settings.width if settings else None) or self.target.width
        height = (settings.height if settings else None) or self.target.height
        fps_configured = (
            (obs.configured_fps if obs is not None else None) or (settings.fps if settings else None) or self.target.fps
        )
        fps_actual = obs.active_fps if obs is not None and obs.streaming else None
        if fps_actual is None and ffmpeg is not None and not ffmpeg.ended:
            fps_actual = ffmpeg.fps
        if fps_actual is not None and fps_configured:
            values["fps_ratio"] = fps_actual / fps_configured

        if video_kbps:
            profile = self.preset.profile_for(width, height, fps_configured)
            values["video_bitrate_preset_ratio"] = video_kbps / profile.min_video_kbps
        keyframe_known = settings is not None or self.target.keyframe_interval_s is not None
        if keyframe_known:
            interval = settings.keyframe_interval_s if settings is not None else self.target.keyframe_interval_s
            values["keyframe_interval_wrong"] = 1.0 if self.preset.keyframe_problem(interval) else 0.0

        if system is not None and system.disk is not None and configured_bps:
            values["recording_minutes_left"] = system.disk.free_bytes * 8 / configured_bps / 60
        if self.target.expect_live:
            live = (obs is not None and obs.streaming) or (ffmpeg is not None and not ffmpeg.ended)
            values["stream_down"] = 0.0 if live else 1.0
        return {name: value for name, value in values.items() if value is not None}

    def _live_s(self, snapshot: HealthSnapshot) -> float | None:
        obs, relay, ffmpeg = snapshot.obs, snapshot.relay, snapshot.ffmpeg
        if obs is not None and obs.streaming and obs.stream_duration_s is not None:
            return obs.stream_duration_s
        live = (relay is not None and relay.publishing) or (ffmpeg is not None and not ffmpeg.ended)
        t = snapshot.taken_at.timestamp()
        if not live:
            self._live_since = None
            return None
        if self._live_since is None:
            self._live_since = t
        return t - self._live_since

    def _obs_drop_ratio(self, snapshot: HealthSnapshot) -> float | None:
        """OBS's frames dropped for the network over the last SHORT_WINDOW_S, from its counters."""
        obs = snapshot.obs
        if (
            obs is None
            or not obs.streaming
            or obs.frames_dropped_network_total is None
            or obs.frames_output_total is None
        ):
            self._obs_frames.clear()
            return None
        t = obs.taken_at.timestamp()
        if self._obs_frames and obs.frames_output_total < self._obs_frames[-1][2]:
            self._obs_frames.clear()  # a new stream: its counters start again at zero
        if not self._obs_frames or t > self._obs_frames[-1][0]:
            self._obs_frames.append((t, obs.frames_dropped_network_total, obs.frames_output_total))
        while len(self._obs_frames) > 2 and t - self._obs_frames[1][0] >= SHORT_WINDOW_S:
            self._obs_frames.popleft()
        first_t, first_dropped, first_output = self._obs_frames[0]
        last_t, last_dropped, last_output = self._obs_frames[-1]
        if last_output - first_output <= 0 or last_t - first_t < 1.0:
            return None
        return (last_dropped - first_dropped) / (last_output - first_output)

    def _obs_congestion_mean(self, snapshot: HealthSnapshot) -> float | None:
        obs = snapshot.obs
        if obs is None or not obs.streaming or obs.output_congestion_ratio is None:
            self._obs_congestion.clear()
            return None
        t = obs.taken_at.timestamp()
        if not self._obs_congestion or t > self._obs_congestion[-1][0]:
            self._obs_congestion.append((t, obs.output_congestion_ratio))
        while self._obs_congestion and t - self._obs_congestion[0][0] >= SHORT_WINDOW_S:
            self._obs_congestion.popleft()
        return statistics.fmean(value for _, value in self._obs_congestion)

    def _throughput(self, snapshot: HealthSnapshot) -> float | None:
        """Bits per second getting out over the last THROUGHPUT_WINDOW_S: long enough to average out
        keyframes and muxer bursts, short enough that a collapsing uplink shows within two ticks."""
        obs = snapshot.obs
        if obs is not None and obs.streaming and obs.output_bitrate_bps is not None:
            t = obs.taken_at.timestamp()
            if not self._obs_bitrates or t > self._obs_bitrates[-1][0]:
                self._obs_bitrates.append((t, obs.output_bitrate_bps))
            while self._obs_bitrates and t - self._obs_bitrates[0][0] > THROUGHPUT_WINDOW_S:
                self._obs_bitrates.popleft()
            return statistics.fmean(value for _, value in self._obs_bitrates)
        self._obs_bitrates.clear()
        return self._ffmpeg.throughput_bps


def uplink_backlog(
    snapshot: HealthSnapshot, ffmpeg_speed_ratio: float | None = None, configured_bps: float | None = None
) -> float | None:
    """1 when the link shows a backlog where the agent can see it, 0 when it shows none, None when it cannot
    see the link at all: an encoder sending less than configured blames the uplink only with this evidence.
    An ffmpeg producing media slower than real time is blocked on its socket (the `-re` input paces it)."""
    uplink, relay, obs = snapshot.uplink, snapshot.relay, snapshot.obs
    seen = False
    if uplink is not None and uplink.state in ("ok", "congested"):
        seen = True
        queued_bytes = (uplink.unsent_bytes or 0) + (uplink.unacked_bytes or 0)
        # The tracker's verdict (RTT over its baseline with bytes unsent, held 0.45 s), or half a second of the
        # stream waiting in the kernel for this connection: more than any keyframe burst on a link that keeps up.
        if uplink.congested or (configured_bps and queued_bytes * 8 >= QUEUED_BACKLOG_S * configured_bps):
            return 1.0
    if relay is not None and relay.publishing:
        seen = True
        if relay.queue_ms >= RELAY_BACKLOG_MS or bool(relay.frames_dropped_per_s):
            return 1.0
    if obs is not None and obs.streaming and obs.output_congestion_ratio is not None:
        seen = True
        if obs.output_congestion_ratio >= OBS_BACKLOG_CONGESTION_RATIO:
            return 1.0
    if ffmpeg_speed_ratio is not None:
        seen = True
        if ffmpeg_speed_ratio < BLOCKED_SPEED_RATIO:
            return 1.0
    return 0.0 if seen else None

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
from agent.models.uplink import UplinkSample
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
    "uplink_backlog": "1 when the link shows a backlog (kernel: congested or bytes unsent; relay queue; OBS's buffer).",
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

# Throughput is averaged over this window (see `_throughput`).
THROUGHPUT_WINDOW_S = 2.0
MIN_EVIDENCE_S = 1.5
# OBS's first seconds send less than configured (and then catch up); a stream this young is not judged on rates.
STREAM_START_S = 10.0
# The shorter windows the alerts read: short enough that an alert clears within seconds of the trouble ending.
SHORT_WINDOW_S = 5.0
# Backlog evidence: this much unsent in the encoder's socket, this much media in the relay's queue, or OBS's
# send buffer this far toward its drop threshold.
UNSENT_BACKLOG_BYTES = 8192
RELAY_BACKLOG_MS = 200
OBS_BACKLOG_CONGESTION_RATIO = 0.1


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
        self._ffmpeg_bytes: deque[tuple[float, int]] = deque(maxlen=64)  # (time, bytes through so far)
        self._ffmpeg_written = 0
        self._obs_bitrates: deque[tuple[float, float]] = deque(maxlen=64)
        self._ffmpeg_media: deque[tuple[float, float]] = deque(maxlen=64)
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

        throughput = self._throughput(snapshot)
        values["output_throughput_bps"] = throughput
        ratio = throughput / configured_bps if throughput is not None and configured_bps else None
        values["output_bitrate_ratio"] = ratio

        capacity = snapshot.upload_capacity
        if capacity is not None:
            values["upload_capacity_bps"] = capacity.bps
            if not capacity.lower_bound and configured_bps:
                values["upload_headroom_ratio"] = capacity.bps / configured_bps
        values["uplink_backlog"] = uplink_backlog(snapshot)
        live_s = self._live_s(snapshot)
        values["stream_live_s"] = live_s
        values["stream_settled"] = None if live_s is None else float(live_s >= STREAM_START_S)
        values["frames_dropped_network_ratio_5s"] = self._obs_drop_ratio(snapshot)
        values["output_congestion_ratio_5s"] = self._obs_congestion_mean(snapshot)

        values["ffmpeg_speed_ratio"] = self._ffmpeg_speed(snapshot)
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

    def _ffmpeg_speed(self, snapshot: HealthSnapshot) -> float | None:
        """ffmpeg's own `speed` is averaged since it started, so a slow start drags it down for the
        whole run; this is the same figure over the last window only."""
        ffmpeg = snapshot.ffmpeg
        if ffmpeg is None or ffmpeg.ended or ffmpeg.out_time_s is None:
            self._ffmpeg_media.clear()
            return None
        t = ffmpeg.taken_at.timestamp()
        if not self._ffmpeg_media or t > self._ffmpeg_media[-1][0]:
            if self._ffmpeg_media and ffmpeg.out_time_s < self._ffmpeg_media[-1][1]:
                self._ffmpeg_media.clear()
            self._ffmpeg_media.append((t, ffmpeg.out_time_s))
        while len(self._ffmpeg_media) > 2 and t - self._ffmpeg_media[1][0] >= THROUGHPUT_WINDOW_S:
            self._ffmpeg_media.popleft()
        first_t, first_out = self._ffmpeg_media[0]
        if t - first_t < MIN_EVIDENCE_S:
            return None
        return (ffmpeg.out_time_s - first_out) / (t - first_t)

    def _throughput(self, snapshot: HealthSnapshot) -> float | None:
        """Bits per second getting out over the last THROUGHPUT_WINDOW_S: long enough to average out
        keyframes and muxer bursts, short enough that a collapsing uplink shows within two ticks."""
        obs, ffmpeg = snapshot.obs, snapshot.ffmpeg
        if obs is not None and obs.streaming and obs.output_bitrate_bps is not None:
            t = obs.taken_at.timestamp()
            if not self._obs_bitrates or t > self._obs_bitrates[-1][0]:
                self._obs_bitrates.append((t, obs.output_bitrate_bps))
            while self._obs_bitrates and t - self._obs_bitrates[0][0] > THROUGHPUT_WINDOW_S:
                self._obs_bitrates.popleft()
            return statistics.fmean(value for _, value in self._obs_bitrates)
        self._obs_bitrates.clear()
        if ffmpeg is None or ffmpeg.ended or ffmpeg.total_size_bytes is None:
            self._ffmpeg_bytes.clear()
            return None
        t = ffmpeg.taken_at.timestamp()
        # ffmpeg counts what it wrote to the socket; what still waits in the kernel's queue (up to
        # megabytes of send buffer while the uplink falls behind) has not got through yet.
        through = ffmpeg.total_size_bytes - _queued_in_kernel(snapshot.uplink, t)
        if not self._ffmpeg_bytes or t > self._ffmpeg_bytes[-1][0]:
            if self._ffmpeg_bytes and ffmpeg.total_size_bytes < self._ffmpeg_written:
                self._ffmpeg_bytes.clear()  # a new ffmpeg run started counting from zero
            self._ffmpeg_written = ffmpeg.total_size_bytes
            self._ffmpeg_bytes.append((t, through))
        # Keep the newest reading that is at least a window old as the start of the window.
        while len(self._ffmpeg_bytes) > 2 and t - self._ffmpeg_bytes[1][0] >= THROUGHPUT_WINDOW_S:
            self._ffmpeg_bytes.popleft()
        first_t, first_bytes = self._ffmpeg_bytes[0]
        if t - first_t < MIN_EVIDENCE_S:
            return None  # not enough wall time yet to say anything honest
        return (self._ffmpeg_bytes[-1][1] - first_bytes) * 8 / (t - first_t)


def uplink_backlog(snapshot: HealthSnapshot) -> float | None:
    """1 when the link shows a backlog where the agent can see it, 0 when it shows none, None when it cannot
    see the link at all: an encoder sending less than configured blames the uplink only with this evidence."""
    uplink, relay, obs = snapshot.uplink, snapshot.relay, snapshot.obs
    seen = False
    if uplink is not None and uplink.state in ("ok", "congested"):
        seen = True
        if uplink.congested or (uplink.unsent_bytes or 0) >= UNSENT_BACKLOG_BYTES:
            return 1.0
    if relay is not None and relay.publishing:
        seen = True
        if relay.queue_ms >= RELAY_BACKLOG_MS or bool(relay.frames_dropped_per_s):
            return 1.0
    if obs is not None and obs.streaming and obs.output_congestion_ratio is not None:
        seen = True
        if obs.output_congestion_ratio >= OBS_BACKLOG_CONGESTION_RATIO:
            return 1.0
    return 0.0 if seen else None


def _queued_in_kernel(uplink: UplinkSample | None, at_s: float) -> int:
    """Bytes the encoder wrote that the kernel still holds (unsent, or sent and not yet acknowledged), from
    the uplink source's reading of that connection when it is within a second of `at_s`; else 0."""
    if uplink is None or uplink.state not in ("ok", "congested") or abs(uplink.taken_at.timestamp() - at_s) > 1.0:
        return 0
    return (uplink.unsent_bytes or 0) + (uplink.unacked_bytes or 0)

"""The preflight checks: small functions from what was observed to `PreflightCheck`s, and the verdict.

Pure functions over an `Observation` (the snapshots of the window, the bandwidth result, the stream
target and the platform preset): no I/O, so every verdict can be tested from synthetic data. The
runner (runner.py) gathers the observation; the CLI and the API only show the report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.models import (
    BandwidthResult,
    CheckStatus,
    EncoderSettings,
    HealthSnapshot,
    PreflightCheck,
    RecommendedSettings,
    Verdict,
)
from agent.platforms import PlatformPreset, VideoProfile
from agent.rules.derived import StreamTarget
from agent.rules.playbook import Playbook, recommended_video_kbps

# Upload headroom: the same thresholds as the upload_headroom rule (configs/rules.toml).
HEADROOM_PASS, HEADROOM_WARN = 1.5, 1.1
CPU_PASS, CPU_WARN = 0.60, 0.85
MEMORY_PASS, MEMORY_WARN = 0.80, 0.92
DISK_PASS_BYTES, DISK_WARN_BYTES = 20e9, 5e9
RTT_WARN_MS, RTT_FAIL_MS = 150.0, 300.0
JITTER_WARN_MS = 30.0
LOSS_WARN, LOSS_FAIL = 0.01, 0.05
LAG_WARN, LAG_FAIL = 0.01, 0.05


@dataclass
class Observation:
    snapshots: list[HealthSnapshot]
    preset: PlatformPreset
    playbook: Playbook
    target: StreamTarget = field(default_factory=StreamTarget)
    bandwidth: BandwidthResult | None = None
    bandwidth_skipped: str | None = None
    encoder_sources: tuple[str, ...] = ()

    @property
    def last(self) -> HealthSnapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    def encoder_settings(self) -> EncoderSettings:
        """What the encoder is set to: OBS's own settings, else the stream settings."""
        for snapshot in reversed(self.snapshots):
            obs = snapshot.obs
            if obs is not None and obs.settings is not None and obs.connection == "connected":
                return obs.settings
        return self.target.encoder_settings()

    def profile(self) -> VideoProfile:
        settings = self.encoder_settings()
        return self.preset.profile_for(settings.width, settings.height, settings.fps)

    def planned_video_kbps(self) -> int:
        """The video bitrate the stream will use: the encoder's, else the preset's recommendation."""
        return self.encoder_settings().video_bitrate_kbps or self.profile().recommended_video_kbps

    def audio_kbps(self) -> int:
        return self.encoder_settings().audio_bitrate_kbps or self.preset.audio.recommended_kbps


def _check(
    name: str, status: CheckStatus, message: str, value: str | None = None, suggestion: str | None = None
) -> PreflightCheck:
    return PreflightCheck(name=name, status=status, value=value, message=message, suggestion=suggestion)


def _values(observation: Observation, read: Callable[[HealthSnapshot], float | None]) -> list[float]:
    values = []
    for snapshot in observation.snapshots:
        value = read(snapshot)
        if value is not None and math.isfinite(value):
            values.append(value)
    return values


# --- the machine ------------------------------------------------------------------------------------


def check_cpu(o: Observation) -> PreflightCheck:
    usage = _values(o, lambda s: s.system.cpu_usage_ratio if s.system else None)
    if not usage:
        return _check("CPU", "skipped", "the system source is off or has not reported")
    last = o.last
    cores = last.system.cpu_count_logical if last is not None and last.system is not None else 0
    mean, peak = statistics.fmean(usage), max(usage)
    value = f"{mean:.0%} busy on average, {peak:.0%} at peak, {cores} logical cores"
    if mean >= CPU_WARN:
        return _check("CPU", "fail", "the CPU is already nearly full before streaming", value, _close_busy(o))
    if mean >= CPU_PASS or cores < 4:
        why = "little CPU headroom left for the encoder" if mean >= CPU_PASS else "few cores for software encoding"
        return _check("CPU", "warn", why, value, "use a hardware encoder (NVENC, Quick Sync, AMF) or x264 veryfast")
    return _check("CPU", "pass", "enough CPU headroom for the encoder", value)


def _close_busy(o: Observation) -> str:
    last = o.last
    if last is None or last.system is None or not last.system.top_processes:
        return "close programs you do not need while streaming"
    names = ", ".join(p.name for p in last.system.top_processes[:3])
    return f"close programs you do not need while streaming (busiest now: {names})"


def check_memory(o: Observation) -> PreflightCheck:
    used = _values(o, lambda s: s.system.memory_used_ratio if s.system else None)
    if not used:
        return _check("memory", "skipped", "the system source is off or has not reported")
    peak = max(used)
    value = f"{peak:.0%} in use"
    if peak >= MEMORY_WARN:
        return _check("memory", "fail", "memory is nearly full: the encoder may stall", value, _close_busy(o))
    if peak >= MEMORY_PASS:
        return _check("memory", "warn", "memory is getting full", value, _close_busy(o))
    return _check("memory", "pass", "enough free memory", value)


def check_disk(o: Observation) -> PreflightCheck:
    last = o.last
    disk = last.system.disk if last is not None and last.system is not None else None
    if disk is None:
        return _check("disk", "skipped", "free space where recordings go is unknown")
    total_kbps = o.planned_video_kbps() + o.audio_kbps()
    minutes = disk.free_bytes * 8 / (total_kbps * 1000) / 60
    value = f"{disk.free_bytes / 1e9:.1f} GB free in {disk.path} (about {minutes:.0f} min of recording)"
    if disk.free_bytes < DISK_WARN_BYTES:
        return _check("disk", "fail", "too little space to record this stream", value, f"free space on {disk.path}")
    if disk.free_bytes < DISK_PASS_BYTES:
        return _check("disk", "warn", "space for a short recording only", value, f"free space on {disk.path}")
    return _check("disk", "pass", "enough space to record", value)


def check_power(o: Observation) -> PreflightCheck:
    last = o.last
    if last is None or last.system is None:
        return _check("power", "skipped", "the system source is off or has not reported")
    if last.system.on_battery:
        charge = last.system.battery.charge_ratio if last.system.battery else None
        value = f"on battery ({charge:.0%})" if charge is not None else "on battery"
        return _check("power", "warn", "laptops slow the CPU and network on battery", value, "plug in the power supply")
    return _check("power", "pass", "on mains power", "mains" if last.system.battery else "no battery")


# --- the network ------------------------------------------------------------------------------------


def check_link(o: Observation) -> PreflightCheck:
    last = o.last
    if last is None or last.network is None:
        return _check("link", "skipped", "the network source is off or has not reported")
    link = last.network.link
    if last.network.on_wifi or link.kind == "wifi":
        signal = f", signal {link.wifi_signal_dbm:.0f} dBm" if link.wifi_signal_dbm is not None else ""
        return _check(
            "link",
            "warn",
            "Wi-Fi loses packets in bursts",
            f"Wi-Fi ({link.interface}{signal})",
            "switch to wired Ethernet",
        )
    if link.kind == "wired":
        speed = f", {link.link_speed_mbps} Mbit/s" if link.link_speed_mbps else ""
        return _check("link", "pass", "wired connection", f"wired ({link.interface}{speed})")
    return _check("link", "pass", "link type unknown (not Wi-Fi as far as the agent can tell)", link.interface)


def check_ingests(o: Observation) -> list[PreflightCheck]:
    last = o.last
    if last is None or not last.agent.ingest_primary:
        return [
            _check(
                "ingest",
                "warn",
                "no ingest configured: the agent cannot check the path to your platform",
                suggestion="set ingest.primary to your platform's server and key",
            )
        ]
    if last.network is None:
        return [_check("ingest", "skipped", "the network source is off or has not reported")]
    checks = []
    for target in last.network.targets:
        if target.role == "extra":
            continue
        name = f"ingest {target.role}"
        # Reachable at any time of the window: a single lost probe is for the stability check.
        seen = [
            t.reachable
            for s in o.snapshots
            if s.network is not None
            for t in s.network.targets
            if t.name == target.name and t.reachable is not None
        ]
        if not seen:
            checks.append(_check(name, "warn", "not probed yet (the window was too short)", target.name))
        elif any(seen):
            rtt = f", {target.rtt_p50_ms_10s:.0f} ms" if target.rtt_p50_ms_10s is not None else ""
            checks.append(_check(name, "pass", "reachable", f"{target.name}{rtt}"))
        else:
            status: CheckStatus = "fail" if target.role == "primary" else "warn"
            checks.append(
                _check(
                    name,
                    status,
                    f"cannot be reached: {target.error or 'no answer'}",
                    target.name,
                    "check the server address, or use another ingest of your platform",
                )
            )
    return checks or [_check("ingest", "skipped", "no ingest probed yet")]


def check_stability(o: Observation) -> PreflightCheck:
    rtts = _values(o, lambda s: s.network.ingest_rtt_p95_ms if s.network else None)
    losses = _values(o, lambda s: s.network.ingest_loss_ratio if s.network else None)
    jitters = _values(o, lambda s: s.network.ingest_jitter_ms if s.network else None)
    if not rtts and not losses:
        return _check("network stability", "skipped", "no round trips to the ingest were measured")
    rtt, loss = max(rtts, default=0.0), max(losses, default=0.0)
    jitter = max(jitters, default=0.0)
    value = f"RTT p95 {rtt:.0f} ms, jitter {jitter:.0f} ms, loss {loss:.1%}"
    if loss >= LOSS_FAIL or rtt >= RTT_FAIL_MS:
        return _check("network stability", "fail", "the path to the ingest is unreliable", value, "use a wired link")
    if loss >= LOSS_WARN or rtt >= RTT_WARN_MS or jitter >= JITTER_WARN_MS:
        return _check("network stability", "warn", "the path to the ingest is shaky", value, "use a wired link")
    return _check("network stability", "pass", "steady path to the ingest", value)


def check_bandwidth(o: Observation) -> PreflightCheck:
    if o.bandwidth_skipped is not None:
        status: CheckStatus = "skipped" if o.bandwidth_skipped.startswith("--no-bandwidth") else "warn"
        return _check("bandwidth", status, o.bandwidth_skipped)
    result = o.bandwidth
    if result is None or not result.ok or result.upload_bps is None:
        error = result.error if result is not None else "no result"
        return _check("bandwidth", "warn", f"the upload could not be measured: {error}")
    needed_kbps = o.planned_video_kbps() + o.audio_kbps()
    headroom = result.upload_bps / (needed_kbps * 1000)
    value = f"{result.upload_bps / 1e6:.2f} Mbit/s sustained upload, {headroom:.2f}x the {needed_kbps} kbps stream"
    fits = recommended_video_kbps(result.upload_bps, o.audio_kbps(), o.playbook)
    suggestion = f"lower the video bitrate to {fits} kbps or use a faster connection"
    if headroom < HEADROOM_WARN:
        return _check("bandwidth", "fail", "the uplink cannot carry this stream", value, suggestion)
    if headroom < HEADROOM_PASS:
        return _check("bandwidth", "warn", "little upload headroom for this stream", value, suggestion)
    return _check("bandwidth", "pass", "enough upload for this stream", value)


# --- the encoder ------------------------------------------------------------------------------------


def check_encoder_connected(o: Observation) -> PreflightCheck:
    if not o.encoder_sources:
        return _check(
            "encoder",
            "skipped",
            "no encoder source configured (sources.obs / sources.ffmpeg)",
            suggestion="turn on the OBS source to check OBS's settings and lag",
        )
    last = o.last
    if last is not None and last.obs is not None and last.obs.connection == "connected":
        return _check("encoder", "pass", "OBS is connected", "OBS")
    if last is not None and last.ffmpeg is not None and not last.ffmpeg.ended:
        return _check("encoder", "pass", "ffmpeg is reporting progress", "ffmpeg")
    if "obs" not in o.encoder_sources:
        return _check(
            "encoder",
            "skipped",
            "ffmpeg reports only while it runs",
            suggestion="start it with `streamhealth run -- ffmpeg ...` to have it watched",
        )
    detail = last.obs.connection_detail if last is not None and last.obs is not None else None
    return _check(
        "encoder",
        "warn",
        f"OBS is not connected{': ' + detail if detail else ''}",
        suggestion="start OBS and check Tools > WebSocket Server Settings (sources.obs)",
    )


def check_encoder_settings(o: Observation) -> list[PreflightCheck]:
    settings = o.encoder_settings()
    preset = o.preset
    profile = o.profile()
    checks: list[PreflightCheck] = []
    kbps = settings.video_bitrate_kbps
    if kbps is None:
        checks.append(
            _check(
                "video bitrate",
                "skipped",
                "unknown (connect OBS, or set stream.video_bitrate_kbps)",
                suggestion=f"{preset.display_name} recommends {profile.recommended_video_kbps} kbps for {profile.label}",
            )
        )
    else:
        value = (
            f"{kbps} kbps ({preset.display_name} {profile.label}: {profile.min_video_kbps}-{profile.max_video_kbps})"
        )
        if kbps > profile.max_video_kbps:
            checks.append(
                _check(
                    "video bitrate",
                    "fail",
                    "above what the platform accepts",
                    value,
                    f"set {profile.max_video_kbps} kbps or less",
                )
            )
        elif kbps < profile.min_video_kbps:
            checks.append(
                _check(
                    "video bitrate",
                    "warn",
                    "below the platform's range: the picture will suffer",
                    value,
                    f"raise it to {profile.recommended_video_kbps} kbps",
                )
            )
        else:
            checks.append(_check("video bitrate", "pass", "within the platform's range", value))
    if settings.width and settings.height:
        label = (
            f"{settings.width}x{settings.height}@{settings.fps:g}"
            if settings.fps
            else f"{settings.width}x{settings.height}"
        )
        known = {(p.width, p.height) for p in preset.profiles}
        fps_ok = settings.fps is None or any(abs(p.fps - settings.fps) < 0.6 for p in preset.profiles)
        if (settings.width, settings.height) in known and fps_ok:
            checks.append(_check("resolution and frame rate", "pass", f"a {preset.display_name} profile", label))
        else:
            offered = ", ".join(p.label for p in preset.profiles)
            checks.append(
                _check(
                    "resolution and frame rate",
                    "warn",
                    f"not one of {preset.display_name}'s profiles",
                    label,
                    f"use one of {offered}",
                )
            )
    else:
        checks.append(
            _check("resolution and frame rate", "skipped", "unknown (connect OBS, or set stream.width / height / fps)")
        )
    if settings.keyframe_interval_s is not None:
        problem = preset.keyframe_problem(settings.keyframe_interval_s)
        value = f"{settings.keyframe_interval_s:g} s" if settings.keyframe_interval_s else "automatic"
        if problem:
            checks.append(
                _check(
                    "keyframe interval",
                    "fail" if preset.keyframe_interval_exact else "warn",
                    problem,
                    value,
                    f"set {preset.keyframe_interval_s:g} s",
                )
            )
        else:
            checks.append(_check("keyframe interval", "pass", f"suits {preset.display_name}", value))
    else:
        checks.append(
            _check("keyframe interval", "skipped", "unknown (connect OBS, or set stream.keyframe_interval_s)")
        )
    audio = settings.audio_bitrate_kbps
    if audio is not None:
        if audio > preset.audio.max_kbps:
            checks.append(
                _check(
                    "audio",
                    "warn",
                    f"above {preset.display_name}'s {preset.audio.max_kbps} kbps",
                    f"{audio} kbps",
                    f"set {preset.audio.recommended_kbps} kbps",
                )
            )
        else:
            checks.append(_check("audio", "pass", "within the platform's range", f"{audio} kbps"))
    return checks


def check_lag(o: Observation) -> list[PreflightCheck]:
    last = o.last
    obs = last.obs if last is not None else None
    if obs is None or obs.connection != "connected":
        return []
    checks = []
    for name, ratio in (
        ("OBS encoding lag", obs.frames_skipped_encoding_ratio_10s),
        ("OBS rendering lag", obs.frames_missed_rendering_ratio_10s),
    ):
        if ratio is None:
            continue
        value = f"{ratio:.1%} of frames in the last 10 s"
        if ratio >= LAG_FAIL:
            checks.append(
                _check(
                    name,
                    "fail",
                    "frames are being lost already",
                    value,
                    "lower the resolution or use a faster encoder preset",
                )
            )
        elif ratio >= LAG_WARN:
            checks.append(
                _check(
                    name,
                    "warn",
                    "some frames are being lost",
                    value,
                    "lower the resolution or use a faster encoder preset",
                )
            )
        else:
            checks.append(_check(name, "pass", "no frames lost", value))
    return checks


INSTANT_CHECKS: list[Callable[[Observation], PreflightCheck | list[PreflightCheck]]] = [
    check_cpu,
    check_memory,
    check_disk,
    check_power,
    check_link,
    check_ingests,
    check_encoder_connected,
    check_encoder_settings,
]
WINDOW_CHECKS: list[Callable[[Observation], PreflightCheck | list[PreflightCheck]]] = [
    check_stability,
    check_bandwidth,
    check_lag,
]


def run_checks(o: Observation, *, include_window: bool = True) -> list[PreflightCheck]:
    checks: list[PreflightCheck] = []
    for check in [*INSTANT_CHECKS, *(WINDOW_CHECKS if include_window else [])]:
        result = check(o)
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def verdict_of(checks: list[PreflightCheck]) -> Verdict:
    statuses = {check.status for check in checks}
    if "fail" in statuses:
        return "NO_GO"
    if "warn" in statuses:
        return "GO_WITH_WARNINGS"
    return "GO"


def recommend(o: Observation, checks: list[PreflightCheck]) -> RecommendedSettings:
    """What to set: the preset's profile, scaled down to what the measured upload carries."""
    preset = o.preset
    audio = min(o.audio_kbps(), preset.audio.max_kbps)
    profile = o.profile()
    video = profile.recommended_video_kbps
    upload = o.bandwidth.upload_bps if o.bandwidth is not None and o.bandwidth.ok else None
    if upload is not None:
        fits = recommended_video_kbps(upload, audio, o.playbook)
        if fits < profile.min_video_kbps:
            # Step down to the largest profile whose minimum the upload still carries.
            smaller = [p for p in preset.profiles if p.min_video_kbps <= fits]
            if smaller:
                profile = max(smaller, key=lambda p: (p.width * p.height, p.fps))
        video = max(min(fits, profile.recommended_video_kbps), o.playbook.min_video_kbps)
    cpu_trouble = any(c.name == "CPU" and c.status in ("warn", "fail") for c in checks)
    return RecommendedSettings(
        video_bitrate_kbps=video,
        audio_bitrate_kbps=audio,
        resolution=profile.resolution,
        fps=round(profile.fps),
        keyframe_interval_s=preset.keyframe_interval_s,
        video_encoder="hardware (NVENC, Quick Sync, AMF) or x264 veryfast" if cpu_trouble else None,
    )

"""The preflight checks: small functions from what was observed to `PreflightCheck`s, and the verdict.

Pure functions over an `Observation` (the snapshots of the window, the bandwidth result, the stream
target and the platform preset): no I/O, so every verdict can be tested from synthetic data. The
runner (runner.py) gathers the observation; the CLI and the API only show the report.

A new check goes in the module of what it checks (machine.py, network.py, encoder.py, or a new one)
and into `INSTANT_CHECKS` (judged on the latest snapshot) or `WINDOW_CHECKS` (needs the whole window).
"""

from __future__ import annotations

from collections.abc import Callable

from agent.models import PreflightCheck, RecommendedSettings, Verdict
from agent.preflight.checks.encoder import check_encoder_connected, check_encoder_settings, check_lag
from agent.preflight.checks.machine import check_cpu, check_disk, check_memory, check_power
from agent.preflight.checks.network import check_bandwidth, check_ingests, check_link, check_stability
from agent.preflight.checks.observation import Observation
from agent.rules.playbook import recommended_video_kbps

__all__ = ["INSTANT_CHECKS", "WINDOW_CHECKS", "Observation", "recommend", "run_checks", "verdict_of"]


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
    if o.live_uplink:
        upload = o.live_link_rate_bps()
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

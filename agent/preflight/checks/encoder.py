"""Preflight checks of the encoder: connected, set up for the platform, not lagging."""

from __future__ import annotations

from agent.models import PreflightCheck
from agent.preflight.checks.observation import Observation, make_check

LAG_WARN, LAG_FAIL = 0.01, 0.05


def check_encoder_connected(o: Observation) -> PreflightCheck:
    if not o.encoder_sources:
        return make_check(
            "encoder",
            "skipped",
            "no encoder source configured (sources.obs / sources.ffmpeg)",
            suggestion="turn on the OBS source to check OBS's settings and lag",
        )
    last = o.last
    if last is not None and last.obs is not None and last.obs.connection == "connected":
        return make_check("encoder", "pass", "OBS is connected", "OBS")
    if last is not None and last.ffmpeg is not None and not last.ffmpeg.ended:
        return make_check("encoder", "pass", "ffmpeg is reporting progress", "ffmpeg")
    if "obs" not in o.encoder_sources:
        return make_check(
            "encoder",
            "skipped",
            "ffmpeg reports only while it runs",
            suggestion="start it with `streamhealth run -- ffmpeg ...` to have it watched",
        )
    detail = last.obs.connection_detail if last is not None and last.obs is not None else None
    return make_check(
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
            make_check(
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
                make_check(
                    "video bitrate",
                    "fail",
                    "above what the platform accepts",
                    value,
                    f"set {profile.max_video_kbps} kbps or less",
                )
            )
        elif kbps < profile.min_video_kbps:
            checks.append(
                make_check(
                    "video bitrate",
                    "warn",
                    "below the platform's range: the picture will suffer",
                    value,
                    f"raise it to {profile.recommended_video_kbps} kbps",
                )
            )
        else:
            checks.append(make_check("video bitrate", "pass", "within the platform's range", value))
    if settings.width and settings.height:
        label = (
            f"{settings.width}x{settings.height}@{settings.fps:g}"
            if settings.fps
            else f"{settings.width}x{settings.height}"
        )
        known = {(p.width, p.height) for p in preset.profiles}
        fps_ok = settings.fps is None or any(abs(p.fps - settings.fps) < 0.6 for p in preset.profiles)
        if (settings.width, settings.height) in known and fps_ok:
            checks.append(make_check("resolution and frame rate", "pass", f"a {preset.display_name} profile", label))
        else:
            offered = ", ".join(p.label for p in preset.profiles)
            checks.append(
                make_check(
                    "resolution and frame rate",
                    "warn",
                    f"not one of {preset.display_name}'s profiles",
                    label,
                    f"use one of {offered}",
                )
            )
    else:
        checks.append(
            make_check(
                "resolution and frame rate", "skipped", "unknown (connect OBS, or set stream.width / height / fps)"
            )
        )
    if settings.keyframe_interval_s is not None:
        problem = preset.keyframe_problem(settings.keyframe_interval_s)
        value = f"{settings.keyframe_interval_s:g} s" if settings.keyframe_interval_s else "automatic"
        if problem:
            checks.append(
                make_check(
                    "keyframe interval",
                    "fail" if preset.keyframe_interval_exact else "warn",
                    problem,
                    value,
                    f"set {preset.keyframe_interval_s:g} s",
                )
            )
        else:
            checks.append(make_check("keyframe interval", "pass", f"suits {preset.display_name}", value))
    else:
        checks.append(
            make_check("keyframe interval", "skipped", "unknown (connect OBS, or set stream.keyframe_interval_s)")
        )
    audio = settings.audio_bitrate_kbps
    if audio is not None:
        if audio > preset.audio.max_kbps:
            checks.append(
                make_check(
                    "audio",
                    "warn",
                    f"above {preset.display_name}'s {preset.audio.max_kbps} kbps",
                    f"{audio} kbps",
                    f"set {preset.audio.recommended_kbps} kbps",
                )
            )
        else:
            checks.append(make_check("audio", "pass", "within the platform's range", f"{audio} kbps"))
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
                make_check(
                    name,
                    "fail",
                    "frames are being lost already",
                    value,
                    "lower the resolution or use a faster encoder preset",
                )
            )
        elif ratio >= LAG_WARN:
            checks.append(
                make_check(
                    name,
                    "warn",
                    "some frames are being lost",
                    value,
                    "lower the resolution or use a faster encoder preset",
                )
            )
        else:
            checks.append(make_check(name, "pass", "no frames lost", value))
    return checks

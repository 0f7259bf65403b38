"""Preflight checks and verdict from synthetic observations: each check judges what was measured,
the verdict is the worst of them, and the recommendation fits the measured upload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.models import (
    AgentInfo,
    BandwidthResult,
    EncoderSettings,
    HealthSnapshot,
    LinkInfo,
    NetworkSample,
    ObsSample,
    PreflightCheck,
    SystemSample,
    TargetStability,
    UplinkSample,
)
from agent.platforms import load_preset
from agent.preflight.checks import Observation, recommend, run_checks, verdict_of
from agent.rules.derived import StreamTarget
from agent.rules.playbook import load_playbook

T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)


def system(cpu: float = 0.2, cores: int = 8, memory: float = 0.5, battery: bool = False) -> SystemSample:
    return SystemSample(
        cpu_usage_ratio=cpu,
        cpu_per_core_ratio=[cpu] * cores,
        cpu_count_logical=cores,
        memory_total_bytes=16 << 30,
        memory_available_bytes=8 << 30,
        memory_used_ratio=memory,
        swap_total_bytes=0,
        swap_used_ratio=0,
        on_battery=battery,
    )


def network(reachable: bool = True, wifi: bool = False, rtt: float = 20, loss: float = 0.0) -> NetworkSample:
    return NetworkSample(
        targets=[TargetStability(name="ingest.example:1935", role="primary", reachable=reachable, rtt_p50_ms_10s=rtt)],
        ingest_reachable=reachable,
        ingest_rtt_ms=rtt,
        ingest_rtt_p95_ms=rtt * 1.2,
        ingest_jitter_ms=2,
        ingest_loss_ratio=loss,
        link=LinkInfo(interface="wlan0" if wifi else "eth0", kind="wifi" if wifi else "wired"),
        on_wifi=wifi,
    )


def snapshots(n: int = 5, **samples: object) -> list[HealthSnapshot]:
    return [
        HealthSnapshot(
            taken_at=T0 + timedelta(seconds=i),
            agent=AgentInfo(
                version="t",
                pid=1,
                started_at=T0,
                uptime_s=i,
                platform="twitch",
                ingest_primary="rtmp://ingest.example/app/<redacted>",
            ),
            overall="ok",
            sources={},
            **samples,  # type: ignore[arg-type]
        )
        for i in range(n)
    ]


def bandwidth(upload_mbps: float) -> BandwidthResult:
    return BandwidthResult(
        backend="http", target="bw:8080", started_at=T0, finished_at=T0, upload_bps=upload_mbps * 1e6, duration_s=5
    )


TARGET = StreamTarget(
    video_bitrate_kbps=3000, audio_bitrate_kbps=160, width=1280, height=720, fps=30, keyframe_interval_s=2
)


def observe(upload_mbps: float | None = 10.0, **samples: object) -> Observation:
    samples.setdefault("system", system())
    samples.setdefault("network", network())
    return Observation(
        snapshots=snapshots(**samples),
        preset=load_preset("twitch"),
        playbook=load_playbook(),
        target=TARGET,
        bandwidth=bandwidth(upload_mbps) if upload_mbps is not None else None,
        bandwidth_skipped=None if upload_mbps is not None else "--no-bandwidth: the upload was not measured",
    )


def by_name(checks: list[PreflightCheck]) -> dict[str, PreflightCheck]:
    return {check.name: check for check in checks}


def test_a_healthy_setup_is_go() -> None:
    checks = run_checks(observe())
    assert verdict_of(checks) == "GO", [c for c in checks if c.status not in ("pass", "skipped")]
    assert by_name(checks)["bandwidth"].value == "10.00 Mbit/s sustained upload, 3.16x the 3160 kbps stream"


@pytest.mark.parametrize(
    ("upload_mbps", "status", "verdict"),
    [(4.8, "pass", "GO"), (4.0, "warn", "GO_WITH_WARNINGS"), (3.4, "fail", "NO_GO"), (1.2, "fail", "NO_GO")],
)
def test_bandwidth_headroom_decides_between_go_and_no_go(upload_mbps: float, status: str, verdict: str) -> None:
    # The stream needs 3160 kbps: 1.5x is 4.74 Mbit/s, 1.1x is 3.48 Mbit/s.
    checks = run_checks(observe(upload_mbps))
    assert by_name(checks)["bandwidth"].status == status
    assert verdict_of(checks) == verdict


def test_failed_bandwidth_measurement_warns_with_its_reason() -> None:
    o = observe()
    o.bandwidth = BandwidthResult(
        backend="http", target="bw:8080", started_at=T0, finished_at=T0, ok=False, error="cannot connect to bw:8080"
    )
    check = by_name(run_checks(o))["bandwidth"]
    assert check.status == "warn" and "cannot connect to bw:8080" in check.message


def test_no_bandwidth_flag_skips_the_test_without_warning() -> None:
    checks = run_checks(observe(None))
    assert by_name(checks)["bandwidth"].status == "skipped" and verdict_of(checks) == "GO"


@pytest.mark.parametrize(
    ("samples", "check", "status"),
    [
        ({"system": system(cpu=0.9)}, "CPU", "fail"),
        ({"system": system(cpu=0.7)}, "CPU", "warn"),
        ({"system": system(cores=2)}, "CPU", "warn"),
        ({"system": system(memory=0.95)}, "memory", "fail"),
        ({"system": system(battery=True)}, "power", "warn"),
        ({"network": network(wifi=True)}, "link", "warn"),
        ({"network": network(reachable=False)}, "ingest primary", "fail"),
        ({"network": network(rtt=400)}, "network stability", "fail"),
        ({"network": network(loss=0.02)}, "network stability", "warn"),
    ],
)
def test_each_check_judges_its_measurement(samples: dict[str, object], check: str, status: str) -> None:
    checks = by_name(run_checks(observe(**samples)))
    assert checks[check].status == status
    assert checks[check].value  # the measured value is always shown


def test_encoder_settings_are_checked_against_the_preset_from_obs() -> None:
    obs = ObsSample(
        connection="connected",
        settings=EncoderSettings(
            video_bitrate_kbps=8000, audio_bitrate_kbps=160, width=1280, height=720, fps=30, keyframe_interval_s=0
        ),
    )
    o = observe(obs=obs)
    o.encoder_sources = ("obs",)
    checks = by_name(run_checks(o))
    assert checks["encoder"].status == "pass"
    assert checks["video bitrate"].status == "fail" and checks["video bitrate"].suggestion == "set 6000 kbps or less"
    assert checks["keyframe interval"].status == "fail" and "automatic" in checks["keyframe interval"].message
    assert checks["resolution and frame rate"].status == "pass"
    assert verdict_of(list(checks.values())) == "NO_GO"


def test_recommendation_steps_down_to_what_the_upload_carries() -> None:
    o = observe(2.0)
    rec = recommend(o, run_checks(o))
    # 2 Mbit/s / 1.5 = 1333 - 160 audio = 1173 -> 1150 kbps: below 720p30's 2000 minimum on Twitch,
    # and no Twitch profile goes lower: stays at 720p30 with the bitrate that fits.
    assert rec.video_bitrate_kbps == 1150
    assert rec.resolution == "1280x720" and rec.fps == 30 and rec.keyframe_interval_s == 2
    plenty = observe(20.0)
    assert recommend(plenty, run_checks(plenty)).video_bitrate_kbps == 3000  # the preset's recommendation caps it


def test_recommendation_picks_a_smaller_profile_when_the_platform_has_one() -> None:
    o = observe(2.0)
    o.preset = load_preset("custom")
    o.target = StreamTarget(video_bitrate_kbps=4500, audio_bitrate_kbps=160, width=1920, height=1080, fps=30)
    rec = recommend(o, run_checks(o))
    assert rec.resolution == "854x480" and rec.video_bitrate_kbps == 1150


def test_encoder_check_warns_for_a_missing_obs_but_not_for_an_idle_ffmpeg() -> None:
    o = observe(obs=ObsSample(connection="not_connected", connection_detail="connection refused"))
    o.encoder_sources = ("obs", "ffmpeg")
    check = by_name(run_checks(o))["encoder"]
    assert check.status == "warn" and "connection refused" in check.message
    o.encoder_sources = ("ffmpeg",)
    assert by_name(run_checks(o))["encoder"].status == "skipped"


def uplink(congested: bool) -> UplinkSample:
    return UplinkSample(
        state="congested" if congested else "ok",
        rtt_ms=190.0 if congested else 21.0,
        min_rtt_ms=20.0,
        delivery_rate_bps=1_180_000.0 if congested else 4_100_000.0,
        congested=congested,
        link_rate_bps=1_180_000 if congested else None,
        suggested_video_bitrate_kbps=750 if congested else None,
    )


def test_a_live_stream_is_judged_from_its_own_connection_without_a_bandwidth_test() -> None:
    o = observe(None, uplink=uplink(False))
    o.bandwidth_skipped, o.live_uplink = None, True
    check = by_name(run_checks(o))["bandwidth"]
    assert check.status == "pass" and "own connection" in check.message
    assert check.value is not None and "4.10 Mbit/s" in check.value and "baseline 20.0 ms" in check.value


def test_a_congested_live_stream_fails_with_the_bitrate_its_link_carries() -> None:
    o = observe(None, uplink=uplink(True))
    o.bandwidth_skipped, o.live_uplink = None, True
    checks = run_checks(o)
    check = by_name(checks)["bandwidth"]
    assert check.status == "fail" and verdict_of(checks) == "NO_GO"
    assert check.value is not None and check.value.startswith("1.18 Mbit/s delivered")
    assert check.suggestion == "lower the video bitrate to 750 kbps"
    # the recommendation fits what the live link carries (playbook headroom), not the preset's 3000+
    assert recommend(o, checks).video_bitrate_kbps <= 1000

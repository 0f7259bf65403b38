"""The playbook: suggestions filled in from measurements, in the plan's order, each with its reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.models import AgentInfo, BatteryState, EncoderProcess, HealthSnapshot, ProcessUsage, SystemSample
from agent.models.capacity import CapacityEstimate
from agent.platforms import load_preset
from agent.rules.playbook import PlanContext, load_playbook, recommended_video_kbps

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def snapshot(
    system: SystemSample | None = None, backups: list[str] | None = None, capacity: CapacityEstimate | None = None
) -> HealthSnapshot:
    return HealthSnapshot(
        taken_at=NOW,
        agent=AgentInfo(
            version="t", pid=1, started_at=NOW, uptime_s=1, platform="custom", ingest_backups=backups or []
        ),
        overall="ok",
        sources={},
        system=system,
        upload_capacity=capacity,
    )


def busy_system() -> SystemSample:
    return SystemSample(
        cpu_usage_ratio=0.97,
        cpu_per_core_ratio=[0.97, 0.97],
        cpu_count_logical=2,
        memory_total_bytes=8 << 30,
        memory_available_bytes=1 << 30,
        memory_used_ratio=0.88,
        swap_total_bytes=0,
        swap_used_ratio=0.0,
        top_processes=[
            ProcessUsage(pid=10, name="obs", cpu_core_ratio=1.2, memory_rss_bytes=1),
            ProcessUsage(pid=11, name="chrome", cpu_core_ratio=0.45, memory_rss_bytes=1),
            ProcessUsage(pid=12, name="Discord", cpu_core_ratio=0.12, memory_rss_bytes=1),
            ProcessUsage(pid=13, name="idle-thing", cpu_core_ratio=0.01, memory_rss_bytes=1),
        ],
        encoder_process=EncoderProcess(pid=10, name="obs", cpu_core_ratio=1.2, memory_rss_bytes=1, kind="obs"),
        on_battery=True,
        battery=BatteryState(charge_ratio=0.42, on_battery=True),
    )


@pytest.mark.parametrize(
    ("achieved_bps", "audio_kbps", "expected"),
    [
        (1_150_000, 64, 850),  # 1150 / 1.25 = 920 - 64 = 856 -> 850
        (1_150_000, 160, 750),  # 920 - 160 = 760 -> 750
        (6_000_000, 160, 4600),  # 4800 - 160 = 4640 -> 4600
        (300_000, 160, 300),  # never below the floor
    ],
)
def test_recommended_bitrate_leaves_the_headroom_and_the_audio(
    achieved_bps: int, audio_kbps: int, expected: int
) -> None:
    playbook = load_playbook()
    result = recommended_video_kbps(achieved_bps, audio_kbps, playbook, playbook.live_headroom_factor)
    assert result == expected
    assert result == playbook.min_video_kbps or (result + audio_kbps) * 1000 <= 0.85 * achieved_bps
    assert result % playbook.round_to_kbps == 0


def test_lower_bitrate_suggestion_carries_the_measured_numbers() -> None:
    playbook = load_playbook()
    measured = CapacityEstimate(bps=1_150_000, source="kernel_delivery_rate", lower_bound=False, measured_at=NOW)
    context = PlanContext.build(
        snapshot(capacity=measured),
        {"upload_capacity_bps": 1_150_000, "audio_kbps": 64, "configured_bitrate_bps": 2_564_000},
        playbook,
        load_preset("custom"),
    )
    (first, *_rest) = playbook.suggestions("uplink_falling_behind", context)
    assert first.text == "Lower the video bitrate to 850 kbps: only 1.15 Mbit/s is getting through to the ingest"
    assert "64 kbps of audio" in first.why and not first.automatic


def test_a_lower_bound_gives_no_bitrate_to_lower_to() -> None:
    playbook = load_playbook()
    bound = CapacityEstimate(bps=1_150_000, source="encoder_output", lower_bound=True, measured_at=NOW)
    context = PlanContext.build(snapshot(capacity=bound), {"audio_kbps": 64}, playbook, load_preset("custom"))
    first = playbook.suggestions("uplink_falling_behind", context)[0]
    assert "kbps" not in first.text and "?" not in first.why and "unknown" not in first.why


def test_without_a_measured_throughput_the_bitrate_suggestion_falls_back_to_words() -> None:
    playbook = load_playbook()
    context = PlanContext.build(snapshot(), {}, playbook, load_preset("custom"))
    first = playbook.suggestions("uplink_falling_behind", context)[0]
    assert "kbps" not in first.text and first.text.startswith("Lower the video bitrate")


def test_cpu_plan_names_the_busiest_processes_other_than_the_encoder() -> None:
    playbook = load_playbook()
    context = PlanContext.build(snapshot(busy_system()), {}, playbook, load_preset("custom"))
    texts = [s.text for s in playbook.suggestions("cpu_high", context)]
    assert "Close chrome (45% of a core), Discord (12% of a core)" in texts
    assert not any("obs (" in text or "idle-thing" in text for text in texts)
    assert any("NVENC" in text for text in texts)


def test_brb_scene_switch_is_automatic_only_when_configured_and_backup_ingest_is_named() -> None:
    playbook = load_playbook()
    preset = load_preset("youtube")
    backups = ["rtmps://b.rtmps.youtube.com:443/live2/<redacted>?backup=1"]
    manual = PlanContext.build(snapshot(backups=backups), {}, playbook, preset)
    automatic = PlanContext.build(snapshot(backups=backups), {}, playbook, preset, brb_scene="Be right back")
    manual_plan = {s.text: s for s in playbook.suggestions("stream_down", manual)}
    automatic_plan = {s.text: s for s in playbook.suggestions("stream_down", automatic)}
    assert manual_plan["Switch to a BRB (be right back) scene"].automatic is False
    assert automatic_plan["Switch to the BRB scene 'Be right back'"].automatic is True
    assert "Fail over to the backup ingest b.rtmps.youtube.com:443" in manual_plan


def test_power_and_platform_figures_fill_in() -> None:
    playbook = load_playbook()
    context = PlanContext.build(
        snapshot(busy_system()), {}, playbook, load_preset("twitch"), resolution=(1920, 1080), fps=60
    )
    (power,) = playbook.suggestions("on_battery", context)
    assert power.text == "Plug in the power supply" and "42% left" in power.why
    raise_text = playbook.suggestions("bitrate_below_preset", context)[0].text
    assert (
        raise_text == "Raise the video bitrate to 6000 kbps (Twitch recommends it for 1920x1080@60; at least 4500 kbps)"
    )
    lower = playbook.suggestions("encoding_lag", context)[1].text
    assert lower.startswith("Lower the output resolution from 1920x1080 to 1280x720")


def test_every_shipped_rule_kind_has_a_plan() -> None:
    from agent.rules.config import load_rule_set
    from agent.settings import load_settings

    rule_set = load_rule_set(load_settings(environ={}))
    missing = sorted({rule.kind for rule in rule_set.rules} - set(rule_set.playbook.plans))
    assert missing == []

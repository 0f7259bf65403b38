"""Every shipped rule's message renders with the inputs it can be raised with, and never shows a hole ("?",
"None", "unknown"): with every source reporting in full, and with the figures that are often missing (error
texts, notes, rates the relay has not computed yet, the Wi-Fi signal) absent, where the detail is left out
and the message still stands."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from agent.configuration import load_configuration
from agent.models import (
    AgentInfo,
    BatteryState,
    EncoderProcess,
    EncoderSettings,
    HealthSnapshot,
    LoggingStatus,
    NetworkSample,
    ObsSample,
    RelaySample,
    SourceStatus,
    SystemSample,
    UplinkSample,
)
from agent.models.capacity import CapacityEstimate
from agent.models.network import LinkInfo, TargetStability
from agent.models.relay import RelayDestinationSample
from agent.models.shipping import ShippingState
from agent.models.system import DiskSpace
from agent.rules.config import RuleSpec, load_rule_set
from agent.rules.derived import DERIVED_METRICS
from agent.rules.engine import RuleEngine
from agent.rules.templates import render
from tests.agent.rules.feed import Feed, at

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
HOLES = ("?", "None", "unknown", "{", "}")


def full_snapshot(*, sparse: bool) -> HealthSnapshot:
    """Every source reporting. `sparse`: the figures that are often None are None."""

    def maybe(value: Any) -> Any:
        return None if sparse else value

    system = SystemSample(
        taken_at=NOW,
        cpu_usage_ratio=0.97,
        cpu_per_core_ratio=[0.97, 0.97],
        cpu_count_logical=2,
        memory_total_bytes=8 << 30,
        memory_available_bytes=1 << 28,
        memory_used_ratio=0.98,
        swap_total_bytes=1 << 30,
        swap_used_ratio=0.4,
        on_battery=True,
        battery=BatteryState(charge_ratio=0.2, on_battery=True),
        disk=DiskSpace(path="/home/me/Videos", free_bytes=2 << 30, total_bytes=100 << 30, used_ratio=0.98),
        encoder_process=EncoderProcess(pid=10, name="obs", cpu_core_ratio=1.9, memory_rss_bytes=1, kind="obs"),
        encoder_cpu_core_ratio=1.9,
    )
    network = NetworkSample(
        taken_at=NOW,
        targets=[TargetStability(name="10.77.0.2:1935", role="primary", reachable=False, error=maybe("refused"))],
        ingest_reachable=False,
        ingest_rtt_ms=400.0,
        ingest_rtt_p95_ms=maybe(600.0),
        ingest_jitter_ms=90.0,
        ingest_loss_ratio=0.2,
        tcp_retransmits_total=100,
        link=LinkInfo(interface="wlan0", kind="wifi", wifi_signal_dbm=maybe(-71.0)),
        on_wifi=True,
    )
    obs = ObsSample(
        taken_at=NOW,
        connection="connected",
        connection_detail=maybe("the password was refused"),
        streaming=True,
        reconnecting=True,
        stream_duration_s=120.0,
        output_bitrate_bps=900_000.0,
        output_congestion_ratio=0.9,
        output_congestion_ratio_10s=0.8,
        frames_dropped_network_ratio_10s=0.2,
        frames_dropped_network_total=300,
        frames_output_total=3600,
        frames_skipped_encoding_ratio_10s=0.2,
        frames_missed_rendering_ratio_10s=0.2,
        active_fps=20.0,
        configured_fps=30.0,
        average_frame_render_ms=40.0,
        frame_budget_ms=33.3,
        settings=EncoderSettings(video_bitrate_kbps=2500, audio_bitrate_kbps=160, width=1280, height=720, fps=30),
    )
    uplink = UplinkSample(
        taken_at=NOW,
        state="congested",
        connection="10.77.0.2:1935",
        congested=True,
        congestion_reason="RTT 250 ms against a 0.1 ms baseline, 60 KiB waiting unsent",
        link_rate_bps=maybe(1_150_000.0),
        suggested_video_bitrate_kbps=maybe(750),
    )
    relay = RelaySample(
        taken_at=NOW,
        listen="127.0.0.1:1935",
        publishing=True,
        stalled=True,
        ingress_bps=maybe(2_600_000.0),
        egress_bps=maybe(1_100_000.0),
        queue_ms=900,
        frames_dropped_per_s=4.0,
        ingest_unreachable=True,
        going_nowhere=True,
        going_nowhere_reason="no destination has been live or connecting for 10 s",
        holding=True,
        hold_remaining_s=25.0,
        destinations=[RelayDestinationSample(name="10.77.0.2:1935", state="connecting", error=maybe("refused"))],
    )
    shipping = ShippingState(
        state="rejected",
        connected=False,
        collector="http://collector.local",
        agent_id="studio-a",
        lines_waiting=5000,
        oldest_waiting_age_s=4000.0,
        last_error=maybe("401 Unauthorized"),
        last_rejected=maybe("batch 12: bad schema (kept in ship-rejected/12.jsonl)"),
        batches_set_aside_total=2,
        unshipped_lines_deleted_total=10,
        collector_last_seq=1200,
        collector_ahead_by_seqs=200,
    )
    return HealthSnapshot(
        taken_at=NOW,
        agent=AgentInfo(version="t", pid=1, started_at=NOW, uptime_s=1, platform="twitch"),
        overall="critical",
        sources={"obs": SourceStatus(name="obs", state="error", error=maybe("connection refused"))},
        system=system,
        network=network,
        obs=obs,
        uplink=uplink,
        relay=relay,
        shipping=shipping,
        logging=LoggingStatus(state="failing", error=maybe("disk full"), lost_records=12),
        upload_capacity=CapacityEstimate(
            bps=1_150_000, source="kernel_delivery_rate", lower_bound=False, measured_at=NOW, note="measured"
        ),
    )


def value_past(rule: RuleSpec) -> tuple[float | str, str]:
    """A value the rule is raised with, and the severity it is raised at."""
    if rule.comparison in ("above", "below"):
        threshold = rule.critical if rule.critical is not None else rule.warning
        assert threshold is not None
        step = max(1.0, abs(threshold)) * 0.5
        return (threshold + step if rule.comparison == "above" else threshold - step), (
            "critical" if rule.critical is not None else "warning"
        )
    if rule.comparison == "is_true":
        return 1.0, rule.severity
    if rule.comparison == "is_false":
        return 0.0, rule.severity
    if rule.comparison == "in":
        return rule.values[0], rule.severity
    return "not_" + "_".join(rule.values), rule.severity


SHIPPED = load_rule_set(load_configuration(None, environ={})).rules


@pytest.mark.parametrize("sparse", [False, True], ids=["every figure known", "often-missing figures absent"])
@pytest.mark.parametrize("rule", SHIPPED, ids=[rule.name for rule in SHIPPED])
def test_every_shipped_rule_message_renders_without_a_hole(rule: RuleSpec, sparse: bool) -> None:
    engine = RuleEngine.from_settings(load_configuration(None, environ={"STREAMHEALTH_PLATFORM": "twitch"}))
    snapshot = full_snapshot(sparse=sparse)
    engine.derived = {name: 1.0 for name in DERIVED_METRICS} | {
        "configured_bitrate_bps": 2_660_000.0,
        "configured_video_kbps": 2500.0,
        "output_throughput_bps": 1_100_000.0,
        "upload_capacity_bps": 1_150_000.0,
    }
    value, severity = value_past(rule)
    context = engine.plan_context(snapshot)
    moment = engine._moment(rule, severity, value, snapshot, context, 0.0)  # type: ignore[arg-type]
    assert moment is not None, f"{rule.name}: its message lacks a figure: {rule.message}"
    for hole in HOLES:
        assert hole not in moment.message, f"{rule.name}: {moment.message!r}"
    for suggestion in moment.suggestions:
        for hole in HOLES:
            assert hole not in suggestion.text and hole not in suggestion.why, f"{rule.name}: {suggestion}"
    if not sparse and rule.detail is not None:
        assert moment.message.startswith(render(rule.message, _figures(engine, snapshot, value)) or "-"), rule.name
        assert len(moment.message) > len(render(rule.message, _figures(engine, snapshot, value)) or ""), rule.name


def _figures(engine: RuleEngine, snapshot: HealthSnapshot, value: float | str) -> dict[str, Any]:
    return {
        "value": value,
        "obs": snapshot.obs,
        "network": snapshot.network,
        "system": snapshot.system,
        "uplink": snapshot.uplink,
        "relay": snapshot.relay,
        "shipping": snapshot.shipping,
        "logging": snapshot.logging,
        "sources": SimpleNamespace(**snapshot.sources),
        "upload_capacity": snapshot.upload_capacity,
        "derived": SimpleNamespace(**engine.derived),
    }


def test_a_tick_whose_message_lacks_a_figure_is_not_judged_and_the_detail_is_left_out_without_its_figures() -> None:
    rule = RuleSpec(
        name="congested",
        metric="uplink.congested",
        comparison="is_true",
        for_s=0,
        clear_for_s=0,
        message="Not keeping up ({uplink.congestion_reason})",
        detail="about {uplink.link_rate_bps:,.0f} bit/s",
    )
    feed = Feed.with_rules(rule)
    feed.step(0.0, uplink=UplinkSample(taken_at=at(0), state="congested", congested=True))
    assert feed.events() == []  # no reason: nothing to say yet
    feed.step(1.0, uplink=UplinkSample(taken_at=at(1), state="congested", congested=True, congestion_reason="RTT"))
    assert [alert.message for alert in feed.engine.active_alerts()] == ["Not keeping up (RTT)"]
    reading = UplinkSample(
        taken_at=at(2), state="congested", congested=True, congestion_reason="RTT", link_rate_bps=1_150_000
    )
    feed.step(2.0, uplink=reading)
    assert [alert.message for alert in feed.engine.active_alerts()] == ["Not keeping up (RTT) about 1,150,000 bit/s"]

"""The rule engine over synthetic time series: thresholds, durations, hysteresis, severities, trends."""

from __future__ import annotations

import pytest

from agent.models import ObsSample, SystemSample
from agent.rules.config import RuleSpec
from agent.rules.engine import slope_per_s
from tests.agent.rules.feed import Feed, at


def cpu(t: float, ratio: float) -> SystemSample:
    return SystemSample(
        taken_at=at(t),
        cpu_usage_ratio=ratio,
        cpu_per_core_ratio=[ratio],
        cpu_count_logical=1,
        memory_total_bytes=8 << 30,
        memory_available_bytes=4 << 30,
        memory_used_ratio=0.5,
        swap_total_bytes=0,
        swap_used_ratio=0.0,
    )


CPU_RULE = RuleSpec(
    name="cpu_high",
    metric="system.cpu_usage_ratio",
    comparison="above",
    warning=0.85,
    critical=0.95,
    for_s=10,
    clear=0.75,
    clear_for_s=10,
    message="The CPU is {value:.0%} busy",
)


def run_cpu(values: list[float], rule: RuleSpec = CPU_RULE) -> Feed:
    feed = Feed.with_rules(rule)
    for t, value in enumerate(values):
        feed.step(float(t), system=cpu(t, value))
    return feed


def test_alert_is_raised_only_after_the_condition_held_for_its_duration() -> None:
    feed = run_cpu([0.5] * 3 + [0.9] * 10)
    assert feed.events() == []  # 0.9 from t=3 to t=12: held 9 s, not 10
    feed.step(13.0, system=cpu(13, 0.9))
    assert feed.events() == [(13.0, "raised", "warning")]


def test_a_short_spike_never_raises() -> None:
    feed = run_cpu(([0.99] * 5 + [0.5]) * 10)
    assert feed.events() == []


def test_alert_is_raised_once_and_not_repeated_while_active() -> None:
    feed = run_cpu([0.9] * 60)
    assert [event[1] for event in feed.events()] == ["raised"]
    (alert,) = feed.engine.active_alerts()
    assert alert.id == "cpu_high" and alert.message == "The CPU is 90% busy"
    assert alert.since == at(10) and alert.updated_at == at(59)


def test_alert_message_and_value_follow_the_measurement_without_new_events() -> None:
    feed = run_cpu([0.9] * 11 + [0.92] * 3)
    (alert,) = feed.engine.active_alerts()
    assert alert.value == pytest.approx(0.92) and "92%" in alert.message
    assert len(feed.events()) == 1


def test_alert_clears_once_the_value_stayed_healthy_for_its_clear_duration_showing_its_worst_until_then() -> None:
    feed = run_cpu([0.9] * 11 + [0.95, 0.88])
    # Healthy (0.8, under 0.85) from t=13: the alert shows the worst figure of its last clear_for_s (10 s),
    # the one that keeps it active, never 0.8.
    shown = {}
    for t in range(13, 24):
        feed.step(float(t), system=cpu(t, 0.8))
        shown[t] = [(alert.value, alert.message) for alert in feed.engine.active_alerts()]
    assert shown[20] == [(pytest.approx(0.95), "The CPU is 95% busy")]
    assert shown[21] == [(pytest.approx(0.88), "The CPU is 88% busy")]  # 0.95 (t=11) left the window
    assert feed.events() == [(10.0, "raised", "warning"), (23.0, "cleared", "warning")]
    cleared = feed.changes[-1][1].alert
    assert cleared.cleared_at == at(23) and cleared.since == at(10) and cleared.value == pytest.approx(0.88)


def test_escalates_to_critical_after_its_duration_and_back_after_its_clear_duration() -> None:
    feed = run_cpu([0.9] * 11 + [0.97] * 11)
    assert feed.events() == [(10.0, "raised", "warning"), (21.0, "updated", "critical")]
    # 0.93: under critical (0.95): critical for clear_for_s more (showing 97 %), then warning.
    for t in range(22, 40):
        feed.step(float(t), system=cpu(t, 0.93))
        alert = feed.engine.active_alerts()[0]
        assert (alert.severity, alert.value) == (("critical", 0.97) if t < 32 else ("warning", 0.93))
    assert feed.events()[-1] == (32.0, "updated", "warning")


def test_critical_value_from_the_start_raises_critical_directly() -> None:
    feed = run_cpu([0.99] * 11)
    assert feed.events() == [(10.0, "raised", "critical")]


def test_missing_metric_raises_nothing_and_an_active_alert_clears_after_its_clear_duration() -> None:
    feed = run_cpu([0.9] * 11)
    for t in range(11, 20):
        feed.step(float(t))  # the system source went away
    assert [event[1] for event in feed.events()] == ["raised"]
    feed.step(21.0)
    assert feed.events()[-1][1] == "cleared"


def test_below_rule_and_boolean_and_membership_rules() -> None:
    feed = Feed.with_rules(
        RuleSpec(
            name="not_connected",
            metric="obs.connection",
            comparison="not_in",
            values=["connected"],
            severity="critical",
            for_s=2,
            clear_for_s=2,
            message="OBS is {value}",
        ),
        RuleSpec(
            name="reconnecting",
            metric="obs.reconnecting",
            comparison="is_true",
            for_s=0,
            clear_for_s=1,
            message="reconnecting",
        ),
    )
    for t in range(3):
        feed.step(float(t), obs=ObsSample(taken_at=at(t), connection="not_connected"))
    assert feed.events() == [(2.0, "raised", "critical")]
    assert feed.engine.active_alerts()[0].message == "OBS is not_connected"
    feed.step(3.0, obs=ObsSample(taken_at=at(3), connection="connected", reconnecting=True))
    assert feed.events("reconnecting") == [(3.0, "raised", "warning")]
    for t in range(4, 7):
        feed.step(float(t), obs=ObsSample(taken_at=at(t), connection="connected"))
    assert feed.events("not_connected")[-1] == (5.0, "cleared", "critical")
    assert feed.events("reconnecting")[-1] == (5.0, "cleared", "warning")


def test_when_gates_a_rule_on_another_metric() -> None:
    rule = RuleSpec(
        name="congestion",
        metric="obs.output_congestion_ratio",
        comparison="above",
        warning=0.5,
        for_s=0,
        when=["obs.streaming"],
        message="congested",
    )
    feed = Feed.with_rules(rule)
    feed.step(0.0, obs=ObsSample(taken_at=at(0), connection="connected", streaming=False, output_congestion_ratio=0.9))
    assert feed.events() == []
    feed.step(1.0, obs=ObsSample(taken_at=at(1), connection="connected", streaming=True, output_congestion_ratio=0.9))
    assert feed.events() == [(1.0, "raised", "warning")]


def test_slope_is_least_squares_and_needs_enough_of_the_window() -> None:
    points = [(float(t), 2.0 * t + 1) for t in range(10)]
    assert slope_per_s(points, 10) == pytest.approx(2.0)
    assert slope_per_s(points[:2], 10) is None
    assert slope_per_s(points[:4], 10) is None  # 3 s of a 10 s window
    assert slope_per_s([(0.0, 1.0), (1.0, 1.0), (2.0, 1.0)], 4) == 0.0


def test_trend_rule_fires_on_a_steady_rise_but_not_on_a_flat_noisy_level() -> None:
    rule = RuleSpec(
        name="congestion_rising",
        metric="obs.output_congestion_ratio",
        comparison="above",
        warning=0.03,
        for_s=2,
        clear=0.005,
        trend_window_s=8,
        trend_min_value=0.1,
        message="rising +{value:.1%}/s",
    )
    flat = Feed.with_rules(rule)
    for t in range(60):
        level = 0.4 + (0.05 if t % 2 else -0.05)
        flat.step(float(t), obs=ObsSample(taken_at=at(t), connection="connected", output_congestion_ratio=level))
    assert flat.events() == []
    rising = Feed.with_rules(rule)
    for t in range(30):
        rising.step(float(t), obs=ObsSample(taken_at=at(t), connection="connected", output_congestion_ratio=0.05 * t))
    assert rising.events()[0][1] == "raised"
    assert "+5.0%/s" in rising.engine.active_alerts()[0].message


def test_recent_points_read_back_from_the_newest_match_points_since() -> None:
    from agent.history import RingSeries

    series = RingSeries(5)
    for t in range(12):
        series.append(float(t), t * 0.5)
    assert series.recent(since=8.5) == series.points(since=8.5) == [(9.0, 4.5), (10.0, 5.0), (11.0, 5.5)]
    assert series.recent(since=0) == series.points()  # only the 5 kept
    assert RingSeries(3).recent(since=0) == []


def test_ffmpeg_speed_is_measured_over_the_last_seconds_not_since_it_started() -> None:
    from agent.models import FfmpegSample
    from agent.rules.config import RuleSpec as Spec

    rule = Spec(
        name="ffmpeg_slow",
        metric="derived.ffmpeg_speed_ratio",
        comparison="below",
        warning=0.95,
        for_s=3,
        message="{value:.2f}x",
    )
    feed = Feed.with_rules(rule)
    # A 5 s stall while connecting, then real time: ffmpeg's own speed stays below 0.95 for a minute.
    for t in range(5, 65):
        out_time = float(t - 5)
        feed.step(
            float(t),
            ffmpeg=FfmpegSample(taken_at=at(t), out_time_s=out_time, speed_ratio=out_time / t, total_size_bytes=t),
        )
    assert feed.events() == []
    for t in range(65, 75):  # now it produces only half a second per second
        out_time = 60.0 + (t - 65) * 0.5
        feed.step(float(t), ffmpeg=FfmpegSample(taken_at=at(t), out_time_s=out_time, total_size_bytes=t))
    assert feed.events()[0][1:] == ("raised", "warning")
    assert feed.engine.active_alerts()[0].message == "0.50x"

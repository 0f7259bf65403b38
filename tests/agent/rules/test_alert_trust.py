"""Property tests of what an alert may say: for any timeline (values, gaps, irregular ticks), an active alert
shows a value on the alerting side of its threshold, with no hole in its message, and an alert whose metric
has stayed healthy for its clear window is not active."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.models import SystemSample
from agent.rules.config import RuleSpec
from tests.agent.rules.feed import Feed, at

ABOVE = RuleSpec(
    name="cpu_high",
    metric="system.cpu_usage_ratio",
    comparison="above",
    warning=0.85,
    critical=0.95,
    for_s=3,
    clear_for_s=4,
    message="The CPU is {value:.0%} busy (load {system.load_average_1m:.1f})",
)
BELOW = RuleSpec(
    name="memory_low",
    metric="system.memory_available_bytes",
    comparison="below",
    warning=2e9,
    critical=1e9,
    for_s=0,
    clear_for_s=2,
    message="Only {value:,.0f} bytes of memory are free",
)


def sample(t: float, cpu: float, available: float, swap: float | None) -> SystemSample:
    return SystemSample(
        taken_at=at(t),
        cpu_usage_ratio=cpu,
        cpu_per_core_ratio=[cpu],
        cpu_count_logical=1,
        memory_total_bytes=8 << 30,
        memory_available_bytes=int(available),
        memory_used_ratio=0.5,
        swap_total_bytes=0,
        swap_used_ratio=0.0,
        load_average_1m=swap,
    )


# A tick: seconds since the previous one, and either a reading (cpu, available memory, load average or None)
# or nothing at all (the source went away).
ticks = st.lists(
    st.tuples(
        st.sampled_from([0.25, 0.5, 1.0, 1.0, 1.0, 2.0, 3.5]),
        st.one_of(
            st.none(),
            st.tuples(
                st.floats(0.5, 1.0, allow_nan=False),
                st.floats(0.2e9, 3e9, allow_nan=False),
                st.one_of(st.none(), st.floats(0, 1, allow_nan=False)),
            ),
        ),
    ),
    min_size=1,
    max_size=150,
)


def _past(rule: RuleSpec, value: float, threshold: float) -> bool:
    return value > threshold if rule.comparison == "above" else value < threshold


@settings(max_examples=300, deadline=None)
@given(ticks)
def test_an_active_alert_shows_a_value_on_its_alerting_side_and_clears_after_its_clear_window(
    timeline: list[tuple[float, tuple[float, float, float | None] | None]],
) -> None:
    feed = Feed.with_rules(ABOVE, BELOW)
    t = 0.0
    healthy_since: dict[str, float | None] = {ABOVE.name: None, BELOW.name: None}
    for gap, reading in timeline:
        t += gap
        values: dict[str, float | None] = {ABOVE.name: None, BELOW.name: None}
        if reading is None:
            feed.step(t)
        else:
            cpu, available, swap = reading
            feed.step(t, system=sample(t, cpu, available, swap))
            # The CPU rule's message needs the load average: without it, that tick is not judged.
            values = {ABOVE.name: cpu if swap is not None else None, BELOW.name: available}
        active = {alert.id: alert for alert in feed.engine.active_alerts()}
        for rule in (ABOVE, BELOW):
            assert rule.warning is not None
            value = values[rule.name]
            healthy = value is None or not _past(rule, value, rule.warning)
            healthy_since[rule.name] = (healthy_since[rule.name] or t) if healthy else None
            alert = active.get(rule.name)
            if alert is None:
                continue
            assert alert.value is not None and alert.threshold is not None
            assert _past(rule, alert.value, alert.threshold), (t, alert)
            assert alert.severity == ("critical" if alert.threshold == rule.critical else "warning")
            assert "?" not in alert.message and "None" not in alert.message and "unknown" not in alert.message
            since = healthy_since[rule.name]
            assert since is None or t - since < rule.clear_duration_s, f"{rule.name} still active at {t}"

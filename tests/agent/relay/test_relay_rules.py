"""The shipped relay rules: an early warning while the queue grows, critical while the relay drops."""

from __future__ import annotations

from pathlib import Path

from agent.configuration import load_configuration
from agent.models import RelaySample
from agent.rules.engine import RuleEngine
from tests.agent.rules.feed import Feed, at


def relay(t: float, queue_ms: int, dropped_per_s: float = 0.0, dropped_total: int = 0) -> RelaySample:
    return RelaySample(
        taken_at=at(t),
        listen="127.0.0.1:1935",
        publishing=True,
        ingress_bps=2_600_000,
        egress_bps=1_200_000,
        queue_ms=queue_ms,
        frames_dropped_per_s=dropped_per_s,
        frames_dropped_total=dropped_total,
    )


def test_relay_queue_warns_before_the_relay_drops_and_drops_are_critical(tmp_path: Path) -> None:
    engine = RuleEngine.from_settings(load_configuration(None, environ={}))
    feed = Feed(engine)
    dropped = 0
    for t in range(20):
        queue_ms = min(100 * t, 1000)  # 1.4 Mbit/s short: the queue grows 100 ms every second
        per_s = 12.0 if queue_ms > 900 else 0.0
        dropped += int(per_s)
        feed.step(t, relay=relay(t, queue_ms, per_s, dropped))
    warned = feed.events("relay_queue_growing")
    critical = feed.events("relay_dropping")
    assert warned and warned[0][1:] == ("raised", "warning")
    assert critical and critical[0][1:] == ("raised", "critical")
    assert warned[0][0] < critical[0][0]  # the warning comes first
    # The link recovers: the queue empties, drops stop, both clear.
    for t in range(20, 40):
        feed.step(t, relay=relay(t, 0, 0.0, dropped))
    assert feed.events("relay_queue_growing")[-1][1] == "cleared"
    assert feed.events("relay_dropping")[-1][1] == "cleared"

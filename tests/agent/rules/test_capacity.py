"""What the uplink carries (agent/net/capacity.py): a measurement only where the link set the pace, revised as
soon as the link shows no backlog, a lower bound otherwise, and a lower bound never raises the headroom alert."""

from __future__ import annotations

from datetime import timedelta

from agent.configuration import load_configuration
from agent.models import AgentInfo, EncoderSettings, HealthSnapshot, ObsSample, RelaySample, UplinkSample
from agent.models.reports import BandwidthResult
from agent.net.capacity import CapacityTracker
from agent.rules.engine import RuleEngine
from tests.agent.rules.feed import T0, Feed, at


def snapshot(t: float, **samples: object) -> HealthSnapshot:
    return HealthSnapshot(
        taken_at=at(t),
        agent=AgentInfo(version="t", pid=1, started_at=T0, uptime_s=t, platform="custom"),
        overall="ok",
        sources={},
        **samples,  # type: ignore[arg-type]
    )


def obs(t: float, bitrate_bps: float, congestion: float = 0.0) -> ObsSample:
    return ObsSample(
        taken_at=at(t),
        connection="connected",
        streaming=True,
        stream_duration_s=60 + t,
        output_bitrate_bps=bitrate_bps,
        output_congestion_ratio=congestion,
        frames_dropped_network_total=0,
        frames_output_total=int(30 * (60 + t)),
        settings=EncoderSettings(
            video_bitrate_kbps=2500, audio_bitrate_kbps=160, width=1280, height=720, fps=30, keyframe_interval_s=2
        ),
    )


def uplink(t: float, *, congested: bool, link_bps: float | None = None) -> UplinkSample:
    return UplinkSample(
        taken_at=at(t),
        state="congested" if congested else "ok",
        connection="10.77.0.2:1935",
        congested=congested,
        congestion_reason="RTT 250 ms against a 0.1 ms baseline" if congested else None,
        link_rate_bps=link_bps if congested else None,
        suggested_video_bitrate_kbps=750 if congested else None,
        unsent_bytes=60_000 if congested else 0,
    )


def test_what_a_healthy_encoder_sends_is_a_lower_bound_and_raises_nothing() -> None:
    tracker = CapacityTracker()
    estimate = tracker.update(snapshot(0, obs=obs(0, 2_500_000), uplink=uplink(0, congested=False)), 0.0)
    assert estimate is not None and estimate.lower_bound and estimate.source == "encoder_output"
    engine = RuleEngine.from_settings(load_configuration(None, environ={}))
    feed = Feed(engine)
    for t in range(60):
        # A static scene: OBS sends a fraction of its bitrate, the link shows no backlog.
        feed.step(float(t), obs=obs(t, 400_000), uplink=uplink(t, congested=False))
    assert "upload_headroom_ratio" not in engine.derived
    assert engine.derived["upload_capacity_bps"] == 400_000
    assert feed.engine.active_alerts() == []


def test_a_congested_link_is_measured_held_steady_and_revised_once_it_keeps_up() -> None:
    tracker = CapacityTracker()
    readings = [1_150_000, 1_100_000, 1_210_000, 1_180_000]
    estimates = [
        tracker.update(snapshot(t, uplink=uplink(t, congested=True, link_bps=bps)), float(t))
        for t, bps in enumerate(readings)
    ]
    assert all(e is not None and not e.lower_bound and e.source == "kernel_delivery_rate" for e in estimates)
    assert {e.bps for e in estimates if e is not None} == {1_150_000}  # within 20 %: the same link, one figure
    moved = tracker.update(snapshot(4, uplink=uplink(4, congested=True, link_bps=600_000)), 4.0)
    assert moved is not None and moved.bps == 600_000
    recovered = tracker.update(snapshot(5, obs=obs(5, 2_600_000), uplink=uplink(5, congested=False)), 5.0)
    assert recovered is not None and recovered.lower_bound and recovered.bps == 2_600_000


def test_a_bandwidth_test_counts_until_the_link_is_measured_slower_after_it() -> None:
    test = BandwidthResult(
        backend="rtmp",
        target="10.77.0.2:1935",
        started_at=T0 - timedelta(seconds=30),
        finished_at=T0 - timedelta(seconds=20),
        upload_bps=50_000_000,
    )
    tracker = CapacityTracker()
    first = tracker.update(snapshot(0, bandwidth=test, uplink=uplink(0, congested=False)), 0.0)
    assert first is not None and first.source == "bandwidth_test" and not first.lower_bound
    tracker.update(snapshot(1, bandwidth=test, uplink=uplink(1, congested=True, link_bps=1_150_000)), 1.0)
    after = tracker.update(snapshot(2, bandwidth=test, obs=obs(2, 2_600_000), uplink=uplink(2, congested=False)), 2.0)
    assert after is not None and after.source == "encoder_output" and after.lower_bound


def test_the_relay_egress_is_a_measurement_once_its_queue_stayed_backlogged_and_its_readings_agree() -> None:
    def relay(t: float, queue_ms: int, egress_bps: float) -> RelaySample:
        return RelaySample(
            taken_at=at(t), listen="127.0.0.1:1935", publishing=True, queue_ms=queue_ms, egress_bps=egress_bps
        )

    tracker = CapacityTracker()
    kinds, figures = [], []
    # Backlogged from t=1 (the sawing queue at t=3 is no end to it): its egress is the link's rate 2 s on,
    # once three readings agree (t=6); then a burst (t=7: the queue draining 1.45 Mbit/s) moves nothing.
    readings = [(0, 2.6e6), (500, 2.0e6), (600, 1.2e6), (100, 1.1e6), (700, 1.1e6), (800, 1.15e6), (650, 1.2e6)]
    readings += [(900, 1.45e6), (700, 1.12e6), (600, 1.18e6)]
    for t, (queue_ms, egress) in enumerate(readings):
        estimate = tracker.update(snapshot(t, relay=relay(t, queue_ms, egress)), float(t))
        assert estimate is not None
        kinds.append((estimate.source, estimate.lower_bound))
        figures.append(estimate.bps)
    assert kinds == [("relay_egress", True)] * 6 + [("relay_egress", False)] * 4
    assert set(figures[6:]) == {1_150_000}  # the agreed median of 1.1, 1.15, 1.2: held
    quiet = [tracker.update(snapshot(t, relay=relay(t, 0, 2.6e6)), float(t)) for t in range(10, 14)]
    assert [e.lower_bound for e in quiet if e is not None] == [False, True, True, True]


def test_with_the_kernels_view_of_the_relays_link_the_relays_queue_measures_nothing() -> None:
    relay = RelaySample(taken_at=at(0), listen="127.0.0.1:1935", publishing=True, queue_ms=900, egress_bps=1.45e6)
    watched = UplinkSample(taken_at=at(0), state="ok", connection="10.77.0.2:1935", found_by="ingest")
    tracker = CapacityTracker()
    estimates = [tracker.update(snapshot(t, relay=relay, uplink=watched), float(t)) for t in range(5)]
    # The kernel says the link keeps up (the queue drains after a cut): what the relay sends is a bound.
    assert all(e is not None and e.lower_bound for e in estimates)


def test_while_the_relay_holds_the_broadcast_the_streams_last_bound_stands_dated_then_expires() -> None:
    """During a hold nothing of the stream is sent; the link carried what it carried a moment ago, and the
    tile says so with its time instead of 'no evidence yet'. Long after a stream, the bound is gone."""
    tracker = CapacityTracker()
    live = RelaySample(taken_at=at(0), listen="127.0.0.1:1935", publishing=True, queue_ms=0, egress_bps=2.5e6)
    before = tracker.update(snapshot(0, relay=live), 0.0)
    assert before is not None and before.lower_bound and before.bps == 2_500_000
    held = RelaySample(taken_at=at(700), listen="127.0.0.1:1935", publishing=False, holding=True, egress_bps=2e5)
    during = tracker.update(snapshot(700, relay=held), 700.0)
    assert during == before  # the same bound, with the time it was seen (700 s ago: a hold keeps it)
    ended = RelaySample(taken_at=at(710), listen="127.0.0.1:1935", publishing=False)
    assert tracker.update(snapshot(710, relay=ended), 710.0) is None  # the hold over, 710 s on: nothing is known
    after = CapacityTracker()
    after.update(snapshot(0, relay=live), 0.0)
    short = RelaySample(taken_at=at(30), listen="127.0.0.1:1935", publishing=False)
    assert after.update(snapshot(30, relay=short), 30.0) == before  # a short while after a stream, it stands

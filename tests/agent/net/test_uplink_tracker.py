"""The uplink tracker: early warning, its hold and clear times, and a stable bitrate suggestion.

Readings are the real record captured in tests/fixtures/sockdiag/ with the figures of a cut link put in
(the shape seen with OBS behind tc tbf: RTT up from its baseline, unsent bytes piling up, retransmits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from agent.net.sockdiag import TcpDiagRecord
from agent.net.uplink_tracker import UplinkTracker
from tests.agent.net.test_sockdiag import parse

STEP_S = 0.25


@pytest.fixture(scope="module")
def captured() -> TcpDiagRecord:
    (record,) = parse("ipv4_stalled_sender")
    return record


class Link:
    """Successive readings of one connection: counters advance at the given rates."""

    def __init__(self, captured: TcpDiagRecord) -> None:
        self.captured = captured
        self.acked = 1_000_000
        self.retrans = 0
        self.sndbuf_us = 0
        self.now = 0.0

    def read(
        self,
        *,
        rtt_ms: float = 20,
        unsent: int = 0,
        acked_bps: float = 2_600_000,
        delivery_bps: float = 2_600_000,
        retransmits: int = 0,
        sndbuf_limited: bool = False,
        app_limited: bool = True,
    ) -> tuple[float, TcpDiagRecord]:
        self.now += STEP_S
        self.acked += int(acked_bps / 8 * STEP_S)
        self.retrans += retransmits
        self.sndbuf_us += int(STEP_S * 1e6 * 0.5) if sndbuf_limited else 0
        assert self.captured.tcp_info is not None
        info = dataclasses.replace(
            self.captured.tcp_info,
            rtt_us=int(rtt_ms * 1000),
            min_rtt_us=20_000,
            notsent_bytes=unsent,
            bytes_acked=self.acked,
            total_retrans=self.retrans,
            delivery_rate_bytes_per_s=int(delivery_bps / 8),
            delivery_rate_app_limited=app_limited,
            sndbuf_limited_us=self.sndbuf_us,
            ca_state=0,
        )
        return self.now, dataclasses.replace(self.captured, tcp_info=info, send_queue_bytes=unsent + 30000)


def cut_readings(link: Link, seconds: float, *, rate_bps: float = 1_190_000) -> Iterator[tuple[float, TcpDiagRecord]]:
    """A 2.5 Mbit/s stream on a link cut to `rate_bps`: queueing, unsent growing, some retransmits."""
    for index in range(int(seconds / STEP_S)):
        yield link.read(
            rtt_ms=min(200, 40 + 60 * index),
            unsent=12_000 + 20_000 * index,
            acked_bps=rate_bps * (0.9 + 0.2 * (index % 2)),
            delivery_bps=rate_bps * (0.95 + 0.1 * (index % 3) / 2),
            retransmits=2 if index % 3 == 2 else 0,
            sndbuf_limited=index > 4,
            app_limited=False,
        )


def test_a_cut_warns_within_a_second_with_a_bitrate_the_link_can_carry(captured: TcpDiagRecord) -> None:
    link, tracker = Link(captured), UplinkTracker(audio_bitrate_bps=160_000)
    for _ in range(20):
        sample = tracker.update(*link.read())
        assert not sample.congested and sample.state == "ok"
    cut_at = link.now
    warned_at = None
    suggestions = set()
    for now, record in cut_readings(link, 10):
        sample = tracker.update(now, record)
        if sample.congested:
            warned_at = warned_at or now
            suggestions.add(sample.suggested_video_bitrate_kbps)
    assert warned_at is not None and 0.4 <= warned_at - cut_at <= 1.0
    suggestions.discard(None)  # the warning comes first; the figure once enough backlogged intervals agree
    assert len(suggestions) == 1  # stable while the link stays the same
    (suggested,) = suggestions
    assert suggested is not None and 600 <= suggested <= 1000
    assert sample.link_rate_bps is not None and sample.link_rate_bps >= 1_000_000
    assert sample.congestion_reason is not None and "baseline" in sample.congestion_reason


def test_a_stall_does_not_drag_the_suggestion_down(captured: TcpDiagRecord) -> None:
    link, tracker = Link(captured), UplinkTracker(audio_bitrate_bps=160_000)
    for now, record in cut_readings(link, 3):
        first = tracker.update(now, record).suggested_video_bitrate_kbps
    for _ in range(8):  # two seconds with nothing acknowledged, a timeout: rates collapse
        sample = tracker.update(
            *link.read(rtt_ms=400, unsent=300_000, acked_bps=0, delivery_bps=50_000, retransmits=1, app_limited=False)
        )
        assert sample.congested and sample.suggested_video_bitrate_kbps == first
    assert first is not None and first >= 600


def test_one_burst_does_not_warn(captured: TcpDiagRecord) -> None:
    link, tracker = Link(captured), UplinkTracker()
    for index in range(40):
        burst = index % 8 == 0  # a keyframe every 2 s: one reading of queueing, then gone
        sample = tracker.update(
            *link.read(
                rtt_ms=90 if burst else 21, unsent=40_000 if burst else 0, retransmits=int(burst), app_limited=not burst
            )
        )
        assert not sample.congested


def test_recovery_clears_within_five_seconds_and_says_so(captured: TcpDiagRecord) -> None:
    link, tracker = Link(captured), UplinkTracker()
    for now, record in cut_readings(link, 5):
        tracker.update(now, record)
    recovered_at = link.now
    cleared_at = None
    for _ in range(28):
        sample = tracker.update(*link.read(rtt_ms=22, unsent=0, acked_bps=2_600_000))
        if not sample.congested and cleared_at is None:
            cleared_at = link.now
            assert sample.recovered_at_s_ago == 0 and sample.suggested_video_bitrate_kbps is None
    assert cleared_at is not None and cleared_at - recovered_at <= 5.0
    assert sample.recovered_at_s_ago is not None and sample.recovered_at_s_ago > 0


def test_a_slower_link_gets_a_lower_suggestion_once_it_settles(captured: TcpDiagRecord) -> None:
    link, tracker = Link(captured), UplinkTracker(audio_bitrate_bps=128_000)
    for now, record in cut_readings(link, 6, rate_bps=1_190_000):
        high = tracker.update(now, record).suggested_video_bitrate_kbps
    for now, record in cut_readings(link, 20, rate_bps=600_000):
        low = tracker.update(now, record).suggested_video_bitrate_kbps
    assert high is not None and low is not None and low < high and low <= 400

"""Prometheus metric families of the uplink source: the kernel's view of the encoder's ingest connection.

Base units (seconds, bytes, bytes per second: promtool refuses bits); no label carries the server, the process or a key. Only
while a connection is read: no series at all rather than zeros that would look like a perfect link.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.models import HealthSnapshot

_MS = 1000.0


def uplink_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    uplink = snapshot.uplink
    if uplink is None or uplink.state not in ("ok", "congested"):
        return
    yield GaugeMetricFamily(
        "streamhealth_uplink_congested", "1 while the early warning says the path to the ingest cannot keep up.",
        value=1.0 if uplink.congested else 0.0,
    )  # fmt: skip
    gauges: list[tuple[str, str, float | None]] = [
        ("rtt_seconds", "Smoothed RTT of the encoder's ingest connection (kernel).", _seconds(uplink.rtt_ms)),
        ("min_rtt_seconds", "Lowest RTT seen on it: the baseline.", _seconds(uplink.min_rtt_ms)),
        ("rtt_variance_seconds", "RTT variance (kernel rttvar).", _seconds(uplink.rtt_variance_ms)),
        ("unsent_bytes", "Bytes the encoder wrote that are not yet sent.", uplink.unsent_bytes),
        ("unacked_bytes", "Bytes sent and not yet acknowledged.", uplink.unacked_bytes),
        (
            "delivery_rate_bytes_per_second",
            "The kernel's latest delivery-rate sample (x8 for bits).",
            _bytes(uplink.delivery_rate_bps),
        ),
        ("acked_bytes_per_second", "Bytes acknowledged per second: what really left.", _bytes(uplink.acked_bps)),
        ("congestion_window_segments", "TCP congestion window.", uplink.send_congestion_window_segments),
        ("sndbuf_limited_ratio", "Share of time limited by the send buffer.", uplink.sndbuf_limited_ratio),
        ("rwnd_limited_ratio", "Share of time limited by the receiver's window.", uplink.rwnd_limited_ratio),
        ("link_rate_bytes_per_second", "What the congested link carried.", _bytes(uplink.link_rate_bps)),
        (
            "suggested_video_bitrate_bytes_per_second",
            "A video bitrate the congested link can carry (x8 for bits).",
            None if uplink.suggested_video_bitrate_kbps is None else uplink.suggested_video_bitrate_kbps * 1000.0 / 8,
        ),
    ]
    for name, documentation, value in gauges:
        if value is not None:
            yield GaugeMetricFamily(f"streamhealth_uplink_{name}", documentation, value=float(value))
    if uplink.retransmits_total is not None:
        yield CounterMetricFamily(
            "streamhealth_uplink_retransmits", "Segments retransmitted on the connection.",
            value=uplink.retransmits_total,
        )  # fmt: skip


def _bytes(bits: float | None) -> float | None:
    return None if bits is None else bits / 8


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / _MS

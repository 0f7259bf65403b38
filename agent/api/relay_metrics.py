"""Prometheus metric families of the local relay, built from the latest snapshot's `relay` sample.

Counters end in `_total`, durations are seconds, sizes bytes; the destination label is its position in
the relay's list ("0" is the primary ingest), never a host, URL or key.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.models import HealthSnapshot


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, documentation, value=value)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def relay_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    relay = snapshot.relay
    if relay is None:
        return
    yield GaugeMetricFamily("streamhealth_relay_publishing", "1 while an encoder publishes to the relay.",
                            value=relay.publishing)  # fmt: skip
    yield CounterMetricFamily(
        "streamhealth_relay_received_bytes", "Media bytes received from encoders.", value=relay.bytes_in_total
    )
    yield CounterMetricFamily(
        "streamhealth_relay_received_frames", "Frames received from encoders.", value=relay.frames_in_total
    )
    yield CounterMetricFamily("streamhealth_relay_stalls", "Times the encoder stopped sending media.",
                              value=relay.stalls_total)  # fmt: skip
    yield GaugeMetricFamily("streamhealth_relay_stalled", "1 while the encoder sends no media.", value=relay.stalled)
    yield from _gauge("streamhealth_relay_video_fps", "Video frames per second from the encoder.", relay.video_fps)
    yield from _gauge(
        "streamhealth_relay_keyframe_interval_seconds",
        "Time between the last two keyframes.",
        relay.keyframe_interval_s,
    )
    yield from _gauge(
        "streamhealth_relay_av_drift_seconds", "Latest audio minus latest video timestamp.", _seconds(relay.av_drift_ms)
    )
    sent_bytes = CounterMetricFamily("streamhealth_relay_sent_bytes", "Media bytes sent to the ingest.",
                                     labels=["destination"])  # fmt: skip
    sent_frames = CounterMetricFamily("streamhealth_relay_sent_frames", "Frames sent to the ingest.",
                                      labels=["destination"])  # fmt: skip
    dropped = CounterMetricFamily(
        "streamhealth_relay_dropped_frames", "Frames the relay dropped toward the ingest, by reason.",
        labels=["destination", "reason"],
    )  # fmt: skip
    queue_seconds = GaugeMetricFamily("streamhealth_relay_queue_seconds", "Media queued toward the ingest.",
                                      labels=["destination"])  # fmt: skip
    queue_bytes = GaugeMetricFamily("streamhealth_relay_queue_bytes", "Bytes queued toward the ingest.",
                                    labels=["destination"])  # fmt: skip
    connected = GaugeMetricFamily("streamhealth_relay_ingest_connected", "1 while connected to the ingest.",
                                  labels=["destination"])  # fmt: skip
    # Two gauges, not one with a `quantile` label: that label belongs to summaries, with their _sum and
    # _count, and promtool refuses it on a gauge.
    latency_p50 = GaugeMetricFamily(
        "streamhealth_relay_latency_p50_seconds", "Frame in from the encoder to frame out, recent median.",
        labels=["destination"],
    )  # fmt: skip
    latency_p99 = GaugeMetricFamily(
        "streamhealth_relay_latency_p99_seconds", "Frame in from the encoder to frame out, recent 99th percentile.",
        labels=["destination"],
    )  # fmt: skip
    rtt = GaugeMetricFamily("streamhealth_relay_ingest_rtt_seconds", "Kernel's smoothed RTT to the ingest.",
                            labels=["destination"])  # fmt: skip
    rttvar = GaugeMetricFamily("streamhealth_relay_ingest_rtt_variance_seconds", "Kernel's RTT variance.",
                               labels=["destination"])  # fmt: skip
    retransmits = CounterMetricFamily("streamhealth_relay_ingest_retransmits", "TCP retransmissions to the ingest.",
                                      labels=["destination"])  # fmt: skip
    unsent = GaugeMetricFamily("streamhealth_relay_ingest_unsent_bytes", "Bytes in the socket not yet sent.",
                               labels=["destination"])  # fmt: skip
    delivery = GaugeMetricFamily(
        "streamhealth_relay_ingest_delivery_rate_bytes_per_second", "Kernel's delivery rate estimate.",
        labels=["destination"],
    )  # fmt: skip
    reconnects = CounterMetricFamily("streamhealth_relay_ingest_reconnects", "New connections to the same ingest "
                                     "after one was lost.", labels=["destination"])  # fmt: skip
    failovers = CounterMetricFamily("streamhealth_relay_ingest_failovers", "Moves to the next ingest of the list.",
                                    labels=["destination"])  # fmt: skip
    on_backup = GaugeMetricFamily("streamhealth_relay_ingest_on_backup", "1 while forwarding to a backup ingest.",
                                  labels=["destination"])  # fmt: skip
    for index, destination in enumerate(relay.destinations):
        label = str(index)
        sent_frames.add_metric([label], destination.frames_out_total)
        sent_bytes.add_metric([label], destination.bytes_out_total)
        reconnects.add_metric([label], destination.reconnects_total)
        failovers.add_metric([label], destination.failovers_total)
        on_backup.add_metric([label], destination.on_backup)
        drops = destination.frames_dropped
        for reason, count in (("disposable", drops.disposable), ("until_keyframe", drops.until_keyframe),
                              ("queue_full", drops.queue_full), ("ingest_lost", drops.ingest_lost)):  # fmt: skip
            dropped.add_metric([label, reason], count)
        queue_seconds.add_metric([label], destination.queue_ms / 1000)
        queue_bytes.add_metric([label], destination.queue_bytes)
        connected.add_metric([label], destination.state == "live")
        for family, value in ((latency_p50, destination.latency_p50_ms), (latency_p99, destination.latency_p99_ms)):
            if value is not None:
                family.add_metric([label], value / 1000)
        tcp = destination.tcp_info
        if tcp is not None:
            rtt.add_metric([label], tcp.rtt_ms / 1000)
            rttvar.add_metric([label], tcp.rtt_variance_ms / 1000)
            retransmits.add_metric([label], tcp.retransmits_total)
            if tcp.not_sent_bytes is not None:
                unsent.add_metric([label], tcp.not_sent_bytes)
            if tcp.delivery_rate_bps is not None:
                delivery.add_metric([label], tcp.delivery_rate_bps / 8)
    yield from (sent_bytes, sent_frames, dropped, queue_seconds, queue_bytes, connected, latency_p50, latency_p99)
    yield from (rtt, rttvar, retransmits, unsent, delivery, reconnects, failovers, on_backup)

"""Prometheus exposition: a custom collector that reads the latest snapshot at scrape time.

Naming follows Prometheus conventions: one `streamhealth_` prefix, base units at the end (bytes,
seconds), `_total` for counters, `_ratio` for 0..1; labels are low-cardinality and never carry a key or
a URL. A scrape never triggers a measurement.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from agent.api.encoder_metrics import encoder_process_metrics, ffmpeg_metrics, obs_metrics, stream_metrics
from agent.api.relay_metrics import relay_metrics
from agent.api.uplink_metrics import uplink_metrics
from agent.models import HealthSnapshot

_STATE_VALUE = {"starting": -1, "ok": 0, "warning": 1, "critical": 2}


def _gauge(name: str, documentation: str, value: float | None, unit: str = "") -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, documentation, value=value, unit=unit)


def agent_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    yield InfoMetricFamily(
        "streamhealth_agent",
        "The agent's version and the platform preset it judges the stream by.",
        value={"version": snapshot.agent.version, "platform": snapshot.agent.platform, "os": sys.platform},
    )
    yield GaugeMetricFamily(
        "streamhealth_health_state",
        "Overall health: -1 starting (not every source has reported yet), 0 ok, 1 warning, 2 critical.",
        value=_STATE_VALUE[snapshot.overall],
    )
    yield GaugeMetricFamily(
        "streamhealth_agent_start_time_seconds",
        "When the agent started (Unix time).",
        value=snapshot.agent.started_at.timestamp(),
    )
    alerts = GaugeMetricFamily("streamhealth_alerts_active", "Active alerts by severity.", labels=["severity"])
    for severity in ("warning", "critical"):
        alerts.add_metric([severity], sum(1 for alert in snapshot.alerts if alert.severity == severity))
    yield alerts
    by_kind = GaugeMetricFamily(
        "streamhealth_alerts_active_by_kind", "Active alerts by kind and severity.", labels=["kind", "severity"]
    )
    counts: dict[tuple[str, str], int] = {}
    for alert in snapshot.alerts:
        counts[(alert.kind, alert.severity)] = counts.get((alert.kind, alert.severity), 0) + 1
    for (kind, severity), count in sorted(counts.items()):
        by_kind.add_metric([kind, severity], count)
    yield by_kind
    if snapshot.logging is not None and snapshot.logging.state != "off":
        yield GaugeMetricFamily(
            "streamhealth_health_log_writing",
            "1 while the health log is being written, 0 while records are lost (disk full?).",
            value=1 if snapshot.logging.state == "ok" else 0,
        )
        yield GaugeMetricFamily(
            "streamhealth_health_log_lost_records",
            "Records not written since the health log started failing.",
            value=snapshot.logging.lost_records,
        )
    up = GaugeMetricFamily("streamhealth_source_up", "1 when the source's last sample is fresh.", labels=["source"])
    age = GaugeMetricFamily(
        "streamhealth_source_sample_age_seconds", "Seconds since the source's last sample.", labels=["source"]
    )
    for name, status in sorted(snapshot.sources.items()):
        up.add_metric([name], 1.0 if status.state == "ok" else 0.0)
        if status.age_s is not None:
            age.add_metric([name], status.age_s)
    yield up
    yield age


def system_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    system = snapshot.system
    if system is None:
        return
    yield GaugeMetricFamily(
        "streamhealth_cpu_usage_ratio", "Whole-machine CPU use, 0..1.", value=system.cpu_usage_ratio
    )
    cores = GaugeMetricFamily("streamhealth_cpu_core_usage_ratio", "CPU use per logical core.", labels=["core"])
    for index, value in enumerate(system.cpu_per_core_ratio):
        cores.add_metric([str(index)], value)
    yield cores
    yield from _gauge("streamhealth_load_average_1m", "1-minute load average.", system.load_average_1m)
    yield GaugeMetricFamily("streamhealth_memory_used_ratio", "Memory in use, 0..1.", value=system.memory_used_ratio)
    yield GaugeMetricFamily(
        "streamhealth_memory_available_bytes", "Memory available.", value=system.memory_available_bytes
    )
    yield GaugeMetricFamily("streamhealth_swap_used_ratio", "Swap in use, 0..1.", value=system.swap_used_ratio)
    sent = CounterMetricFamily("streamhealth_network_sent_bytes", "Bytes sent per interface.", labels=["interface"])
    received = CounterMetricFamily(
        "streamhealth_network_received_bytes", "Bytes received per interface.", labels=["interface"]
    )
    for interface in system.interfaces:
        sent.add_metric([interface.name], interface.sent_bytes_total)
        received.add_metric([interface.name], interface.received_bytes_total)
    yield sent
    yield received
    yield GaugeMetricFamily(
        "streamhealth_on_battery", "1 when running on battery.", value=1.0 if system.on_battery else 0.0
    )
    if system.battery is not None:
        yield GaugeMetricFamily(
            "streamhealth_battery_charge_ratio", "Battery charge, 0..1.", value=system.battery.charge_ratio
        )
    if system.disk is not None:
        yield GaugeMetricFamily(
            "streamhealth_recordings_disk_free_bytes",
            "Free space where recordings go.",
            value=system.disk.free_bytes,
        )
    yield from _gauge(
        "streamhealth_encoder_cpu_usage_cores",
        "Encoder process CPU use in cores (1.0 = one core).",
        system.encoder_cpu_core_ratio,
    )
    yield from _gauge(
        "streamhealth_encoder_resident_memory_bytes",
        "Encoder process resident memory.",
        system.encoder_memory_rss_bytes,
    )


def network_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    """Per target, labelled by role and host:port (the ingest's address: low cardinality, never a key)."""
    network = snapshot.network
    if network is not None:
        labels = ["target", "role"]
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "reachable": GaugeMetricFamily(
                "streamhealth_target_reachable", "1 when the last probe of the target succeeded.", labels=labels
            ),
            "rtt": GaugeMetricFamily(
                "streamhealth_target_rtt_seconds", "Median RTT over 10 s (TCP connect or TCP_INFO).", labels=labels
            ),
            "rtt_p95": GaugeMetricFamily(
                "streamhealth_target_rtt_p95_seconds", "95th percentile RTT over 10 s.", labels=labels
            ),
            "jitter": GaugeMetricFamily(
                "streamhealth_target_jitter_seconds", "RFC 3550 smoothed RTT jitter.", labels=labels
            ),
            "loss": GaugeMetricFamily(
                "streamhealth_target_probe_loss_ratio", "Probes lost over 10 s, 0..1.", labels=labels
            ),
            "dns": GaugeMetricFamily(
                "streamhealth_target_dns_seconds", "Time of the last DNS resolution.", labels=labels
            ),
            "retransmits": CounterMetricFamily(
                "streamhealth_target_tcp_retransmits",
                "Retransmitted segments on the live connection (TCP_INFO).",
                labels=labels,
            ),
        }
        for target in network.targets:
            key = [target.name, target.role]
            if target.reachable is not None:
                families["reachable"].add_metric(key, 1.0 if target.reachable else 0.0)
            for family, value_ms in (
                ("rtt", target.rtt_p50_ms_10s),
                ("rtt_p95", target.rtt_p95_ms_10s),
                ("jitter", target.jitter_ms),
                ("dns", target.dns_ms),
            ):
                if value_ms is not None:
                    families[family].add_metric(key, value_ms / 1000)
            if target.loss_ratio_10s is not None:
                families["loss"].add_metric(key, target.loss_ratio_10s)
            if target.tcp_info is not None:
                families["retransmits"].add_metric(key, target.tcp_info.retransmits_total)
        yield from families.values()
        yield GaugeMetricFamily(
            "streamhealth_on_wifi", "1 when the uplink is Wi-Fi.", value=1.0 if network.on_wifi else 0.0
        )
        if network.link.wifi_signal_dbm is not None:
            yield GaugeMetricFamily(
                "streamhealth_wifi_signal_dbm", "Wi-Fi signal level (dBm).", value=network.link.wifi_signal_dbm
            )
    bandwidth = snapshot.bandwidth
    if bandwidth is not None and bandwidth.upload_bps is not None:
        upload = GaugeMetricFamily(
            "streamhealth_bandwidth_upload_bytes_per_second",
            "Sustained upload of the last successful bandwidth test, bytes per second (x8 for bits).",
            labels=["backend"],
        )
        upload.add_metric([bandwidth.backend], bandwidth.upload_bps / 8)
        yield upload
        yield GaugeMetricFamily(
            "streamhealth_bandwidth_test_time_seconds",
            "When the last successful bandwidth test finished (Unix time).",
            value=bandwidth.finished_at.timestamp(),
        )


def shipping_metrics(snapshot: HealthSnapshot) -> Iterator[Metric]:
    shipping = snapshot.shipping
    if shipping is None:
        return
    yield GaugeMetricFamily(
        "streamhealth_shipping_connected", "1 when the collector acknowledged the last batch.", value=shipping.connected
    )
    yield GaugeMetricFamily(
        "streamhealth_shipping_lines_waiting", "Health log lines not yet acknowledged.", value=shipping.lines_waiting
    )
    yield from _gauge(
        "streamhealth_shipping_oldest_waiting_age_seconds",
        "Age of the oldest line not yet acknowledged.",
        shipping.oldest_waiting_age_s,
    )
    for name, documentation, value in (
        ("streamhealth_shipping_lines_shipped", "Lines the collector acknowledged.", shipping.lines_shipped_total),
        ("streamhealth_shipping_retries", "Batches resent after a failure.", shipping.retries_total),
        (
            "streamhealth_shipping_batches_set_aside",
            "Batches refused and kept aside.",
            shipping.batches_set_aside_total,
        ),
        (
            "streamhealth_shipping_unshipped_lines_deleted",
            "Lines deleted by retention before they were shipped (hard cap).",
            shipping.unshipped_lines_deleted_total,
        ),
        ("streamhealth_shipping_lines_skipped", "Torn or unreadable lines not shipped.", shipping.lines_skipped_total),
    ):
        yield CounterMetricFamily(name, documentation, value=value)


# Each entry turns one part of the snapshot into metric families; sources add theirs here.
METRIC_BUILDERS: list[Callable[[HealthSnapshot], Iterable[Metric]]] = [
    agent_metrics,
    system_metrics,
    network_metrics,
    obs_metrics,
    ffmpeg_metrics,
    encoder_process_metrics,
    shipping_metrics,
    uplink_metrics,
    stream_metrics,
    relay_metrics,
]


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], HealthSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        for build in METRIC_BUILDERS:
            yield from build(snapshot)


def build_registry(snapshot: Callable[[], HealthSnapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return registry

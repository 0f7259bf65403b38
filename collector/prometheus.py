"""Prometheus for the fleet: HTTP service discovery of the agents, and their figures on the collector's /metrics.

The fleet exposition runs the agent's own metric builders (agent/api/metrics.py) on each agent's latest
shipped snapshot and adds an `agent` label, so recording rules and dashboards read the same names from an
agent or from the collector. Agents that lost contact expose nothing but `..._agent_reporting 0`: stale
figures would look live. Not for the collector's own counters (metrics.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from agent.api.metrics import METRIC_BUILDERS
from agent.net.addresses import is_loopback_host
from collector.fleet import FleetTracker

AGENT_LABEL = "agent"


def target_groups(tracker: FleetTracker, *, include_loopback: bool = False) -> list[dict[str, object]]:
    """Prometheus `http_sd_configs` target groups: one per agent whose API address another machine can reach.

    An agent bound to loopback is only scrapable from its own machine, so it is left out unless asked
    (`?include_loopback=true`, for a Prometheus beside a single agent). The address carries no token:
    Prometheus gets the agent token from its own config.
    """
    groups: list[dict[str, object]] = []
    view = tracker.view()
    for row in view.agents:
        if row.stream_state == "lost_contact" or row.agent_stopped or row.api_url is None:
            continue
        parts = urlsplit(row.api_url)
        if parts.hostname is None or parts.scheme not in ("http", "https"):
            continue
        if is_loopback_host(parts.hostname) and not include_loopback:
            continue
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        labels = {AGENT_LABEL: row.name, "__scheme__": parts.scheme}
        if row.platform:
            labels["platform"] = row.platform
        groups.append({"targets": [f"{host}:{port}"], "labels": labels})
    return groups


class FleetExposition(Collector):
    """Every reporting agent's latest figures, under the agent's own metric names, with an `agent` label."""

    def __init__(self, tracker: FleetTracker) -> None:
        self.tracker = tracker

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        now = self.tracker.read_at or datetime.now(UTC)
        labels = self.tracker.labels()
        merged: dict[str, Metric] = {}
        reporting = GaugeMetricFamily(
            "streamhealth_collector_agent_reporting",
            "1 while the agent reports; 0 once it lost contact (3 reporting intervals of silence).",
            labels=[AGENT_LABEL],
        )
        for row in self.tracker.rows:
            fleet_row = self.tracker.row(row, labels[row.agent_id], now)
            alive = fleet_row.stream_state != "lost_contact" and not fleet_row.agent_stopped
            reporting.add_metric([fleet_row.name], 1.0 if alive else 0.0)
            snapshot = self.tracker.latest(row.agent_id) if alive else None
            if snapshot is None:
                continue
            for build in METRIC_BUILDERS:
                for family in build(snapshot):
                    _merge(merged, family, fleet_row.name)
        yield reporting
        yield from merged.values()


def _merge(merged: dict[str, Metric], family: Metric, agent: str) -> None:
    """One family per name across agents (the text format allows each name once), each sample labelled."""
    into = merged.get(family.name)
    if into is None:
        into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
    for sample in family.samples:
        into.samples.append(
            Sample(sample.name, {AGENT_LABEL: agent, **sample.labels}, sample.value, sample.timestamp, sample.exemplar)
        )

"""The collector's Prometheus metrics: this process's ingest counters, and the fleet as the store sees it.

Counters are per process (scrape every collector); fleet gauges come from the store at scrape time, so
any collector gives the same answer about the agents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.models import IngestAck
from collector.store import AgentRow, Store
from collector.views import agent_view


class CollectorMetrics:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = CollectorRegistry(auto_describe=True)
        self._records = Counter(
            "streamhealth_collector_records", "Records received, by outcome.", ["outcome"], registry=self.registry
        )
        self._rejected = Counter(
            "streamhealth_collector_batches_rejected", "Batches refused, by status.", ["status"], registry=self.registry
        )
        self._latency = Histogram(
            "streamhealth_collector_ingest_seconds",
            "From request to committed answer.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self._fleet = _Fleet()
        self.registry.register(self._fleet)

    def ingested(self, ack: IngestAck, seconds: float) -> None:
        self._records.labels("stored").inc(ack.accepted)
        self._records.labels("duplicate").inc(ack.duplicates)
        self._latency.observe(seconds)

    def rejected(self, status: int) -> None:
        self._rejected.labels(str(status)).inc()

    async def refresh(self) -> None:
        self._fleet.rows = await self.store.agents()


class _Fleet(Collector):
    def __init__(self) -> None:
        self.rows: list[AgentRow] = []

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        views = [agent_view(row, now) for row in self.rows]
        by_state = GaugeMetricFamily("streamhealth_collector_agents", "Agents by state.", labels=["state"])
        for state in ("ok", "warning", "critical", "offline", "unknown"):
            by_state.add_metric([state], sum(1 for view in views if view.state == state))
        yield by_state
        stored = GaugeMetricFamily(
            "streamhealth_collector_agent_records", "Records stored per agent.", labels=["agent"]
        )
        seen = GaugeMetricFamily(
            "streamhealth_collector_agent_last_seen_age_seconds",
            "Seconds since the agent's last batch.",
            labels=["agent"],
        )
        for view in views:
            stored.add_metric([view.name], view.records)
            seen.add_metric([view.name], (now - view.last_seen).total_seconds())
        yield stored
        yield seen

    def describe(self) -> Iterator[Metric]:
        return iter(())

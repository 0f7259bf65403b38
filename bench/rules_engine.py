"""Benchmark: the rule engine's cost per tick with every shipped rule, on a busy snapshot.

The agent runs beside an encoder, so a tick must stay cheap. Prints the mean and p99 time of
`evaluate` over many ticks (quiet and with alerts active) and the engine's memory for its history.
Run: uv run python bench/rules_engine.py
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

from agent.history import History
from agent.models import (
    AgentInfo,
    EncoderSettings,
    HealthSnapshot,
    LinkInfo,
    NetworkSample,
    ObsSample,
    ProcessUsage,
    SystemSample,
)
from agent.rules.engine import RuleEngine
from agent.settings import load_settings

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def snapshot(t: int, trouble: bool) -> tuple[HealthSnapshot, list[object]]:
    at = T0 + timedelta(seconds=t)
    system = SystemSample(
        taken_at=at,
        cpu_usage_ratio=0.95 if trouble else 0.3,
        cpu_per_core_ratio=[0.3] * 8,
        cpu_count_logical=8,
        memory_total_bytes=16 << 30,
        memory_available_bytes=8 << 30,
        memory_used_ratio=0.5,
        swap_total_bytes=0,
        swap_used_ratio=0,
        top_processes=[ProcessUsage(pid=i, name=f"p{i}", cpu_core_ratio=0.2, memory_rss_bytes=1) for i in range(5)],
    )
    obs = ObsSample(
        taken_at=at,
        connection="connected",
        streaming=True,
        output_bitrate_bps=(1.2e6 if trouble else 2.6e6),
        output_congestion_ratio=min(1.0, t * 0.02) if trouble else 0.0,
        frames_dropped_network_ratio_10s=0.03 if trouble else 0.0,
        active_fps=30,
        configured_fps=30,
        settings=EncoderSettings(video_bitrate_kbps=2500, audio_bitrate_kbps=160, width=1280, height=720, fps=30),
    )
    network = NetworkSample(
        taken_at=at, ingest_reachable=True, ingest_rtt_ms=30 + (t if trouble else 0), link=LinkInfo()
    )
    snap = HealthSnapshot(
        taken_at=at,
        agent=AgentInfo(version="b", pid=1, started_at=T0, uptime_s=t, platform="twitch"),
        overall="ok",
        sources={},
        system=system,
        obs=obs,
        network=network,
    )
    return snap, [system, obs, network]


def run(ticks: int, trouble: bool) -> tuple[list[float], RuleEngine]:
    engine = RuleEngine.from_settings(load_settings(environ={}))
    history = History(capacity=21600)
    timings = []
    for t in range(ticks):
        snap, samples = snapshot(t, trouble)
        for sample in samples:
            history.record(sample.taken_at.timestamp(), sample.metrics())  # type: ignore[attr-defined]
        started = time.perf_counter()
        engine.evaluate(snap, history)
        timings.append(time.perf_counter() - started)
    return timings, engine


def main() -> None:
    for label, trouble in (("quiet", False), ("alerts active", True)):
        timings, engine = run(3000, trouble)
        timings.sort()
        print(
            f"{label:14s} {len(engine.rules)} rules: evaluate mean {statistics.fmean(timings) * 1e6:7.1f} us, "
            f"p99 {timings[int(len(timings) * 0.99)] * 1e6:7.1f} us, {len(engine.active_alerts())} active alerts, "
            f"derived history {engine.derived_history.nbytes / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()

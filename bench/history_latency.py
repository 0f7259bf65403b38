"""How fast is `/api/v1/history` on a full ring, and does it hold up the agent's ticks?

    uv run python bench/history_latency.py [--requests 200] [--concurrency 8]

Starts a real agent (no sources) with its API on loopback, fills the history with a full 6 h ring at
1 Hz (21,600 points for each system metric), then times GET /history?metric=... over real HTTP: p50 /
p99 one at a time, then with `--concurrency` clients at once while measuring how late the event
loop's 1 s ticks run. Our httpx client shares the agent's loop (its parsing counts too); `curl`, a separate process as
a user would run it, gives the server-side figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from agent.models import SystemSample
from agent.runtime import Agent
from agent.server import AgentServer
from agent.settings import load_settings

METRIC = "system.cpu_usage_ratio"
POINTS = 6 * 3600


def fill(agent: Agent) -> None:
    now = time.time()
    sample = SystemSample(
        taken_at=agent.snapshot.taken_at,
        cpu_usage_ratio=0.25,
        cpu_per_core_ratio=[0.2, 0.3],
        cpu_count_logical=2,
        memory_total_bytes=8_000_000_000,
        memory_available_bytes=4_000_000_000,
        memory_used_ratio=0.5,
        swap_total_bytes=0,
        swap_used_ratio=0.0,
    )
    metrics = sample.metrics()
    for index in range(POINTS):
        t = now - POINTS + index
        metrics = {name: value + (index % 100) / 1000 for name, value in sample.metrics().items()}
        agent.history.record(t, metrics, monotonic_s=time.monotonic() - POINTS + index)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(requests: int, concurrency: int, max_points: int | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            None, {"STREAMHEALTH_LOGS__DIR": str(Path(folder) / "logs"), "STREAMHEALTH_API__PORT": "0"}
        )
        agent = Agent(settings, [])
        fill(agent)
        server = AgentServer(settings, agent)
        await server.start()
        query = f"metric={METRIC}" + (f"&max_points={max_points}" if max_points else "")
        url = f"{server.url}/api/v1/history?{query}"
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                started = time.perf_counter()
                first = await client.get(url)
                first_ms = (time.perf_counter() - started) * 1000
                points = len(first.json()["points"])
                latencies: list[float] = []
                for _ in range(requests):
                    started = time.perf_counter()
                    (await client.get(url)).raise_for_status()
                    latencies.append((time.perf_counter() - started) * 1000)
                lateness: list[float] = []

                async def ticker(stop: asyncio.Event) -> None:
                    while not stop.is_set():
                        expected = time.perf_counter() + 0.1
                        await asyncio.sleep(0.1)
                        lateness.append((time.perf_counter() - expected) * 1000)

                async def hammer() -> None:
                    for _ in range(max(1, requests // concurrency)):
                        (await client.get(url)).raise_for_status()

                stop = asyncio.Event()
                tick_task = asyncio.create_task(ticker(stop))
                started = time.perf_counter()
                await asyncio.gather(*(hammer() for _ in range(concurrency)))
                elapsed = time.perf_counter() - started
                stop.set()
                await tick_task
            curl_ms: list[float] = []
            for _ in range(50):
                curl = await asyncio.create_subprocess_exec(
                    "curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url, stdout=subprocess.PIPE
                )
                curl_out, _ = await curl.communicate()
                curl_ms.append(float(curl_out) * 1000)
        finally:
            await server.stop()
    print(f"history of {METRIC}: {points} points per answer ({query})")
    print(
        f"  httpx in the agent's own loop, one at a time ({requests} requests): p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
    )
    print(
        f"  {concurrency} concurrent clients: {requests // concurrency * concurrency / elapsed:.0f} requests/s; "
        f"event loop late by p50 {statistics.median(lateness):.1f} ms, max {max(lateness):.1f} ms"
    )
    print(f"  first answer (nothing cached yet, httpx): {first_ms:.1f} ms")
    print(
        f"  curl (a separate process, 50 requests): p50 {statistics.median(curl_ms):.1f} ms, "
        f"p99 {percentile(curl_ms, 0.99):.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-points", type=int, default=None)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.max_points))

"""Load and abuse against a real agent process on loopback: 50 MB bodies, 200 event-stream clients
plus request load, and what they cost the agent (RSS, CPU, tick regularity).

    uv run python bench/abuse.py [--seconds 10] [--sse-clients 200] [--workers 8]

The agent runs as `python -m agent.cli agent` with its usual sources (OBS off: nothing to talk to).
50 MB bodies go through curl without `Expect: 100-continue` (a hostile client sends it all); RSS is
sampled every 20 ms. Event-stream clients read every event; one of them times the gaps between tick
events (1 s apart when the agent keeps up). Figures vary with the machine's load: run it 3 times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RssWatch:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> RssWatch:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def big_bodies(url: str, pid: int, folder: Path) -> None:
    body = folder / "body.json"
    with body.open("wb") as handle:
        handle.write(b'{"x": "' + b"a" * (50 * 1024 * 1024) + b'"}')
    rss_before = psutil.Process(pid).memory_info().rss
    statuses: list[str] = []
    with RssWatch(pid) as watch:
        for path in ("/api/v1/preflight", "/api/v1/bandwidth-test") * 5:
            result = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    "Expect:",
                    "-H",
                    "Content-Type: application/json",
                    "--data-binary",
                    f"@{body}",
                    url + path,
                ],
                capture_output=True,
                text=True,
            )
            statuses.append(result.stdout or f"curl exit {result.returncode}")
    time.sleep(1)
    rss_after = psutil.Process(pid).memory_info().rss
    mb = 1024 * 1024
    print(
        f"10 x 50 MB bodies: answers {sorted(set(statuses))}; agent RSS {rss_before / mb:.0f} MB before, "
        f"peak {watch.peak / mb:.0f} MB, {rss_after / mb:.0f} MB after"
    )


async def load(url: str, pid: int, seconds: float, sse_clients: int, workers: int) -> None:
    gaps: list[float] = []
    events = 0

    async def sse_client(timed: bool) -> None:
        nonlocal events
        last_tick: float | None = None
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", url + "/api/v1/events") as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    events += 1
                    if timed and line.strip() == "event: tick":
                        now = time.monotonic()
                        if last_tick is not None:
                            gaps.append(now - last_tick)
                        last_tick = now

    tasks = [asyncio.create_task(sse_client(i == 0)) for i in range(sse_clients)]
    await asyncio.sleep(2)
    process = psutil.Process(pid)
    cpu_before = sum(process.cpu_times()[:2])
    # Request load from separate processes: one Python process cannot both read 200 streams and
    # drive hundreds of requests a second.
    worker_code = (
        "import sys, time, httpx\n"
        "deadline = time.monotonic() + float(sys.argv[2]); count = 0\n"
        "with httpx.Client(timeout=10) as client:\n"
        "    while time.monotonic() < deadline:\n"
        "        client.get(sys.argv[1]).raise_for_status(); count += 1\n"
        "print(count)\n"
    )
    started = time.monotonic()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", worker_code, url + "/api/v1/health", str(seconds), stdout=subprocess.PIPE
        )
        for _ in range(workers)
    ]
    outputs = await asyncio.gather(*(proc.communicate() for proc in procs))
    elapsed = time.monotonic() - started
    requests = sum(int(out or b"0") for out, _ in outputs)
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    rss = process.memory_info().rss / 1024 / 1024
    print(
        f"{sse_clients} event-stream clients + {workers} processes on /health for {elapsed:.0f} s: "
        f"{requests / elapsed:.0f} requests/s, agent CPU {100 * cpu / elapsed:.0f}% of one core, RSS {rss:.0f} MB; "
        f"tick gaps seen by a client: median {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s"
        if gaps
        else "no tick events seen"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--sse-clients", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="processes sending requests")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")},
            "STREAMHEALTH_API__PORT": str(port),
            "STREAMHEALTH_LOGS__DIR": str(Path(folder) / "logs"),
            "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
        }
        agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "agent"], env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/api/v1/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            time.sleep(2)
            big_bodies(url, agent.pid, Path(folder))
            asyncio.run(load(url, agent.pid, args.seconds, args.sse_clients, args.workers))
        finally:
            agent.terminate()
            agent.wait(10)


if __name__ == "__main__":
    main()

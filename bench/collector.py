"""How much can one collector take? Simulated agents on loopback ship realistic ticks to real collectors.

    uv run python bench/collector.py [--streams 1000] [--seconds 30] [--only sqlite|postgresql]

Runs, one after the other:
  * 1 Hz streams: N agents each send one batch a second holding one tick (what a caught-up agent does),
    against SQLite, PostgreSQL with one collector and PostgreSQL with two (agents split between them);
  * backlog: agents that were cut off send batches of 100 ticks back to back (closed loop), the
    sustained ceiling in records per second.
Prints records/s, ingest latency p50/p99 (request sent -> committed ack received), the collectors' CPU
(% of one core, summed) and RSS, and database bytes per stream-hour (database growth / stream-hours sent).
The load generator runs on the same machine (raw HTTP/1.1 keep-alive over asyncio streams, so it costs
far less than the collector), and PostgreSQL runs with its durable defaults (fsync on). Targets: 1,000
streams at 1 Hz with p99 < 100 ms on SQLite; >= 10,000 records/s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.collector.helpers import add_agent_tokens, add_tokens
from tests.peers.postgres import postgres_available, postgres_server
from tests.peers.wait import free_port, port_open, wait_until

BACKLOG_BATCH = 500  # ship.batch_max_lines: what an agent sends while catching up


def realistic_tick() -> str:
    """One tick line of a real agent with its system source (the record most of a log is made of)."""
    from agent.runtime import Agent
    from agent.settings import load_settings

    async def one_tick() -> str:
        with tempfile.TemporaryDirectory() as folder:
            settings = load_settings(
                None,
                environ={
                    "STREAMHEALTH_LOGS__ENABLED": "false",
                    "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
                    "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
                    "STREAMHEALTH_LOGS__DIR": folder,
                },
            )
            agent = Agent(settings)
            await agent.start()
            await asyncio.sleep(3.5)  # the network source needs two readings for rates
            snapshot = agent.tick()
            await agent.stop()
        from agent.models import TickRecord

        return TickRecord(snapshot=snapshot).model_dump_json()

    return asyncio.run(one_tick())


@dataclass
class Result:
    name: str
    records: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    db_bytes: int = 0
    stream_hours: float = 0.0
    database_cpu_percent: float = 0.0
    server_p50_s: float = float("nan")
    server_p99_s: float = float("nan")

    def line(self) -> str:
        ordered = sorted(self.latencies_s) or [float("nan")]
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        per_hour = self.db_bytes / self.stream_hours if self.stream_hours else float("nan")
        rate = self.records / self.seconds
        cpu_ms = 10 * self.cpu_percent / rate if rate else float("nan")
        return (
            f"{self.name:<44} {rate:>7,.0f} rec/s | latency sent->ack p50 {p50:>6.1f} ms p99 {p99:>7.1f} ms | "
            f"in collector p50 <= {self.server_p50_s * 1000:g} ms p99 <= {self.server_p99_s * 1000:g} ms | "
            f"CPU {self.cpu_percent:>3.0f}% ({cpu_ms:.3f} ms/rec, ~{1000 / cpu_ms:,.0f} rec/s per core) | "
            f"RSS {self.rss_bytes / 1e6:>3.0f} MB | {per_hour / 1e6:>4.1f} MB/stream-h | errors {self.errors}"
            + (f" | PostgreSQL CPU {self.database_cpu_percent:.0f}%" if self.database_cpu_percent else "")
        )


class Agent:
    """One simulated agent: a keep-alive HTTP/1.1 connection posting gzip NDJSON batches."""

    def __init__(self, index: int, port: int, token: str, template: str) -> None:
        self.agent_id = f"bench-{index:05d}"
        self.port, self.token, self.template = port, token, template
        self.seq = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def batch(self, count: int) -> bytes:
        lines = []
        for _ in range(count):
            self.seq += 1
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            lines.append(f'{{"seq":{self.seq},' + self.template.replace("TAKEN_AT", now) + "\n")
        return gzip.compress("".join(lines).encode(), compresslevel=5)

    async def post(self, body: bytes) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            f"POST /api/v1/ingest HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {self.token}\r\n"
            f"X-Streamhealth-Agent-Id: {self.agent_id}\r\nContent-Encoding: gzip\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        assert self.reader is not None
        status = await self.reader.readline()
        length = 0
        while (header := await self.reader.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        await self.reader.readexactly(length)
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(status.decode(errors="replace").strip())

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def drive(agents: list[Agent], seconds: float, per_batch: int, paced: bool, result: Result) -> None:
    deadline = time.monotonic() + seconds

    async def one(agent: Agent) -> None:
        if paced:
            await asyncio.sleep(random.random())  # agents started at different moments
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            body = agent.batch(per_batch)
            sent = time.perf_counter()
            try:
                await asyncio.wait_for(agent.post(body), 30)
            except (OSError, RuntimeError, TimeoutError, asyncio.IncompleteReadError):
                result.errors += 1
                await agent.close()
                agent.writer = None
                await asyncio.sleep(1)
                continue
            result.latencies_s.append(time.perf_counter() - sent)
            result.records += per_batch
            if paced:
                next_at += 1.0
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    started = time.monotonic()
    await asyncio.gather(*(one(agent) for agent in agents))
    result.seconds = time.monotonic() - started
    await asyncio.gather(*(agent.close() for agent in agents))


@contextlib.contextmanager
def collectors(database_url: str, count: int) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    started = []
    try:
        for _ in range(count):
            port = free_port()
            command = [sys.executable, "-m", "tui.cli", "-q", "collector", "serve", "--database", database_url]
            process = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.DEVNULL)
            started.append((port, process))
            wait_until(lambda port=port: port_open("127.0.0.1", port), 30, "the collector")
        yield started
    finally:
        for _, process in started:
            process.terminate()
            process.wait(20)


def postgres_cpu_s() -> float:
    """CPU seconds of the PostgreSQL server processes (all of them: the benchmark starts the only one)."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] == "postgres" and process.info["cpu_times"] is not None:
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return total


def server_latency(port: int, reader_token: str) -> tuple[float, float]:
    """p50 / p99 of request-to-commit inside the collector: the upper bound of the histogram bucket."""
    import httpx

    text = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {reader_token}"}, timeout=10
    ).text
    buckets = []
    for line in text.splitlines():
        if line.startswith("streamhealth_collector_ingest_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0

    def quantile(q: float) -> float:
        return next((bound for bound, count in buckets if total and count >= q * total), float("nan"))

    return quantile(0.5), quantile(0.99)


def database_bytes(database_url: str) -> int:
    if database_url.startswith("sqlite:///"):
        # The main file only: the WAL is checkpointed into it every second and then reused, not grown.
        return Path(database_url.removeprefix("sqlite:///")).stat().st_size
    import psycopg

    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0


def run_case(
    name: str,
    database_url: str,
    n_collectors: int,
    streams: int,
    seconds: float,
    per_batch: int,
    paced: bool,
    template: str,
) -> Result:
    # An agent token writes under one agent id: each simulated agent has its own (bound on its first batch).
    tokens = asyncio.run(add_agent_tokens(database_url, [f"bench-{i:05d}" for i in range(streams)]))
    result = Result(name)
    with collectors(database_url, n_collectors) as running:
        handles = [psutil.Process(process.pid) for _, process in running]
        agents = [Agent(i, running[i % len(running)][0], tokens[i], template) for i in range(streams)]
        size_before = database_bytes(database_url)
        cpu_before = sum(h.cpu_times().user + h.cpu_times().system for h in handles)
        database_before = postgres_cpu_s()
        wall = time.monotonic()
        asyncio.run(drive(agents, seconds, per_batch, paced, result))
        wall = time.monotonic() - wall
        cpu = sum(h.cpu_times().user + h.cpu_times().system for h in handles) - cpu_before
        if database_url.startswith("postgresql"):
            result.database_cpu_percent = 100 * (postgres_cpu_s() - database_before) / wall
        result.cpu_percent = 100 * cpu / wall
        result.rss_bytes = sum(h.memory_info().rss for h in handles)
        result.db_bytes = database_bytes(database_url) - size_before
        result.stream_hours = result.records / 3600  # one record a second is one stream-second
        reader = asyncio.run(add_tokens(database_url))[1]
        result.server_p50_s, result.server_p99_s = server_latency(running[0][0], reader)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--backlog-agents", type=int, default=20)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--pg-no-fsync",
        action="store_true",
        help="PostgreSQL with fsync off: the ceiling when the disk is not the limit",
    )
    args = parser.parse_args()
    tick = realistic_tick()
    template = tick[1:].replace(tick.split('"taken_at":"')[1].split('"')[0], "TAKEN_AT")
    print(f"tick record: {len(tick)} bytes; {args.streams} streams, {args.seconds:g} s per case", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        if args.only != "postgresql":
            for mode, streams, per_batch, paced in (
                ("1 Hz", args.streams, 1, True),
                ("backlog", args.backlog_agents, BACKLOG_BATCH, False),
            ):
                url = f"sqlite:///{folder}/{mode.replace(' ', '')}.sqlite3"
                label = f"SQLite, 1 collector, {mode}: {streams} agents x {per_batch}"
                results.append(run_case(label, url, 1, streams, args.seconds, per_batch, paced, template))
                print(results[-1].line(), flush=True)
    if args.only != "sqlite":
        available, reason = postgres_available()
        if not available:
            print(f"PostgreSQL skipped: {reason}")
        else:
            with postgres_server(durable=not args.pg_no_fsync) as server:
                for n_collectors in (1, 2):
                    for mode, streams, per_batch, paced in (
                        ("1 Hz", args.streams, 1, True),
                        ("backlog", args.backlog_agents, BACKLOG_BATCH, False),
                    ):
                        with server.database() as url:
                            label = f"PostgreSQL, {n_collectors} collector(s), {mode}: {streams} agents x {per_batch}"
                            results.append(
                                run_case(label, url, n_collectors, streams, args.seconds, per_batch, paced, template)
                            )
                            print(results[-1].line(), flush=True)
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared; CPU figures are noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

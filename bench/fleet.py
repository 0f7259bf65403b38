"""Benchmark: the Fleet TUI at 1 Hz with 500 agents, in a real terminal (a pty), and what it costs the collector.

Run 1 (fed): the app in a pseudo-terminal is fed, through its fleet client's own `feed()`, a 500-agent
`FleetView` every second (every row's figures change each second; every 10 s an agent loses contact or
comes back, so the order changes and the table is rebuilt). CPU and RSS of the TUI process, sampled with
psutil.

Run 2 (real collector): a real collector process (SQLite) receives 500 simulated agents shipping full 1 Hz
ticks over HTTP (gzip NDJSON on a keep-alive connection each, as the agent sends; one batch a second by
default, `--batch-s 2` for two ticks every 2 s), and the real Fleet TUI polls it at 1 Hz. CPU of the TUI, and of the collector with and without the TUI polling (the difference is what the
fleet view costs the collector: following 500 agents' new records and building the rows).

    uv run python bench/fleet.py                  # about 2.5 minutes
    uv run python bench/fleet.py --agents 100 --seconds 20
Targets: the TUI under 10% of one core at 1 Hz with 500 agents; memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import gzip
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# --- children: the app in a terminal -------------------------------------------------------------


def run_fed_child(agents: int, seconds: float) -> None:
    from collector.models import FleetView
    from tests.tui import fleet_data
    from tui.fleet_app import build_fleet_app
    from tui.fleet_client import FleetClient

    views: list[FleetView] = []
    for step in range(20):
        base = fleet_data.fleet(extra=agents - 6)
        rows = []
        for index, row in enumerate(base.agents):
            update: dict[str, object] = {
                "cpu_ratio": ((index * 7 + step * 13) % 100) / 100,
                "output_bitrate_bps": 5_000_000 + ((index + step) % 17) * 60_000,
                "rtt_ms": 20 + (index * 3 + step) % 50,
                "silent_s": float(step % 3),
            }
            if index == 50 and step >= 10:  # an agent loses contact half way: the order changes
                update["stream_state"] = "lost_contact"
            rows.append(row.model_copy(update=update))
        views.append(base.model_copy(update={"agents": rows}))

    client = FleetClient("http://127.0.0.1:9")  # never contacted: the bench feeds the client
    app = build_fleet_app(client, poll=False)
    app.bell = lambda: None  # type: ignore[method-assign]
    sent = 0

    def feed() -> None:
        nonlocal sent
        if sent >= seconds:
            app.exit()
            return
        client.feed(views[sent % len(views)])
        sent += 1

    app.call_later(lambda: app.set_interval(1.0, feed))
    app.run()


def run_polling_child(url: str, token: str, seconds: float) -> None:
    from tui.fleet_app import build_fleet_app
    from tui.fleet_client import FleetClient

    app = build_fleet_app(FleetClient(url, token, interval_s=1.0))
    app.bell = lambda: None  # type: ignore[method-assign]
    app.call_later(lambda: app.set_timer(seconds, app.exit))
    app.run()


def in_terminal(size: tuple[int, int], child: object, *args: object) -> int:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.environ["COLUMNS"], os.environ["LINES"] = str(size[0]), str(size[1])
        try:
            child(*args)  # type: ignore[operator]
        finally:
            os._exit(0)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    os.set_blocking(fd, False)
    _DRAINS[pid] = fd
    return pid


_DRAINS: dict[int, int] = {}


def drain_until(pid: int, until_s: float) -> None:
    """Read what the app writes (a terminal would), until the deadline or the child's end."""
    fd = _DRAINS[pid]
    while time.monotonic() < until_s:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return


def cpu_s(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure_tui(pid: int, seconds: float, warmup_s: float, every_s: float = 5.0) -> tuple[list[float], float]:
    """CPU % of one core per window after the warm-up, and the peak RSS (MB)."""
    import psutil

    process = psutil.Process(pid)
    drain_until(pid, time.monotonic() + warmup_s)
    windows, peak = [], 0.0
    end = time.monotonic() + seconds - warmup_s - 2
    while time.monotonic() + every_s <= end:
        before, started = cpu_s(pid), time.monotonic()
        drain_until(pid, started + every_s)
        windows.append(100 * (cpu_s(pid) - before) / (time.monotonic() - started))
        peak = max(peak, process.memory_info().rss / 2**20)
    drain_until(pid, time.monotonic() + 30)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return windows, peak


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    return (
        f"mean {sum(values) / len(values):.1f}%, min {ordered[0]:.1f}%, max {ordered[-1]:.1f}% ({len(values)} windows)"
    )


# --- run 2's peers: a collector and 500 shipping agents ------------------------------------------


SENT = {"records": 0, "failed": 0}


async def ship_forever(url: str, tokens: list[str], agents: int, batch_s: float, stop: asyncio.Event) -> None:
    """Each simulated agent: its own keep-alive HTTP/1.1 connection, a batch every `batch_s`, paced.

    Raw asyncio streams rather than httpx: one httpx client posting 500 requests a second spends more CPU
    than the collector it loads, and would starve the processes this bench measures.
    """
    from urllib.parse import urlsplit

    from agent.models import utc_now
    from agent.models.shipping import AGENT_ID_HEADER, AGENT_NAME_HEADER, INGEST_PATH
    from tests.collector.fleet_data import fleet_snapshot, tick_line

    port = urlsplit(url).port
    marker = utc_now()
    ticks_per_batch = max(1, round(batch_s))

    async def one(index: int) -> None:
        # One full tick built once; each batch only changes its seq and time.
        template = tick_line(999_999_999, fleet_snapshot(marker, cpu=(index % 90) / 100))
        template = template.replace(marker.isoformat(), "@AT@")
        seq = 0
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        await asyncio.sleep(batch_s * index / agents)  # agents started at different moments
        next_at = time.monotonic()
        while not stop.is_set():
            at = utc_now().isoformat()
            lines = []
            for _ in range(ticks_per_batch):
                seq += 1
                lines.append(template.replace("999999999", str(seq), 1).replace("@AT@", at))
            body = gzip.compress("".join(line + "\n" for line in lines).encode(), compresslevel=1)
            head = (
                f"POST {INGEST_PATH} HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {tokens[index]}\r\n"
                f"{AGENT_ID_HEADER}: bench-{index:04d}\r\n{AGENT_NAME_HEADER}: agent-{index:04d}\r\n"
                f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                writer.write(head.encode() + body)
                status = await reader.readline()
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                await reader.readexactly(length)
                if status.startswith(b"HTTP/1.1 200"):
                    SENT["records"] += len(lines)
                else:
                    SENT["failed"] += 1
            except (OSError, asyncio.IncompleteReadError):
                SENT["failed"] += 1
                writer = None
            next_at += batch_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one(index) for index in range(agents)))


async def fleet_states(url: str, token: str) -> str:
    import httpx

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        started = time.monotonic()
        try:
            view = (await http.get(f"{url}/api/v1/fleet")).json()
        except httpx.HTTPError as exc:
            return f"GET /api/v1/fleet failed after {time.monotonic() - started:.0f} s: {type(exc).__name__}"
        took_ms = 1000 * (time.monotonic() - started)
    counts: dict[str, int] = {}
    for row in view["agents"]:
        counts[row["stream_state"]] = counts.get(row["stream_state"], 0) + 1
    return f"{counts} (GET /api/v1/fleet took {took_ms:.0f} ms)"


def run_with_collector(agents: int, seconds: float, size: tuple[int, int], batch_s: float) -> None:
    from tests.collector.helpers import add_agent_tokens, add_tokens
    from tests.peers.wait import free_port, port_open, wait_until

    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/collector.sqlite3"
        _, reader_token = asyncio.run(add_tokens(database))
        # An agent token writes under one agent id: each simulated agent has its own.
        agent_tokens = asyncio.run(add_agent_tokens(database, [f"bench-{i:04d}" for i in range(agents)]))
        port = free_port()
        command = [sys.executable, "-m", "tui.cli", "collector", "serve", "--database", database, "--port", str(port)]
        collector = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: port_open("127.0.0.1", port), 30, "the collector")
            url = f"http://127.0.0.1:{port}"
            stop = asyncio.Event()

            async def phases() -> None:
                shipping = asyncio.create_task(ship_forever(url, agent_tokens, agents, batch_s, stop))
                await asyncio.sleep(10)  # every agent known, the tracker warmed up
                before, started, sent = cpu_s(collector.pid), time.monotonic(), SENT["records"]
                await asyncio.sleep(seconds / 2)
                elapsed = time.monotonic() - started
                alone = 100 * (cpu_s(collector.pid) - before) / elapsed
                rate = (SENT["records"] - sent) / elapsed
                print(
                    f"  ingest achieved: {rate:.0f} records/s (target {agents}); failed posts so far {SENT['failed']}"
                )
                print(f"  collector, nobody watching: {alone:.1f}% of one core")
                pid = in_terminal(size, run_polling_child, url, reader_token, seconds)
                before, started, sent = cpu_s(collector.pid), time.monotonic(), SENT["records"]
                windows, peak = await asyncio.to_thread(measure_tui, pid, seconds, 8.0)
                elapsed = time.monotonic() - started
                watched = 100 * (cpu_s(collector.pid) - before) / elapsed
                rate = (SENT["records"] - sent) / elapsed
                print(f"  ingest achieved meanwhile: {rate:.0f} records/s")
                print(f"  collector with the Fleet TUI polling at 1 Hz: {watched:.1f}% of one core")
                print(f"  fleet states at the end: {await fleet_states(url, reader_token)}")
                print(f"  TUI polling the real collector: {spread(windows)}; peak RSS {peak:.0f} MB")
                stop.set()
                await shipping

            asyncio.run(phases())
        finally:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(20)
            except subprocess.TimeoutExpired:
                collector.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60, help="length of each measured run")
    parser.add_argument("--size", default="120x40", help="terminal size, e.g. 80x24")
    parser.add_argument(
        "--batch-s", type=float, default=1.0, help="run 2: each simulated agent ships every N s (ship.batch_interval_s)"
    )
    parser.add_argument("--skip-collector", action="store_true", help="only run 1 (the TUI fed directly)")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    print(f"Fleet TUI benchmark: {args.agents} agents, 1 Hz, {width}x{height}, python {sys.version.split()[0]}")
    print(f"\nRun 1: the TUI fed a {args.agents}-agent fleet every second for {args.seconds:g} s")
    pid = in_terminal((width, height), run_fed_child, args.agents, args.seconds)
    windows, peak = measure_tui(pid, args.seconds, warmup_s=8.0)
    print(f"  TUI: {spread(windows)}; peak RSS {peak:.0f} MB")
    if not args.skip_collector:
        print(f"\nRun 2: a real collector, {args.agents} agents shipping 1 Hz ticks, the TUI polling it")
        run_with_collector(args.agents, args.seconds, (width, height), args.batch_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())

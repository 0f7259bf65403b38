"""The test bed for attacks on the relay: a real agent process, a real nginx-rtmp as its ingest, a healthy
ffmpeg stream flowing through the relay meanwhile, and the figures each attack is judged by.

- `ByteWatch`: how the healthy stream's bytes arrive at nginx-rtmp (nginx records the stream to a file
  as it gets it, tag by tag; the watch polls the file's size), so the longest pause can be asserted.
- `RssWatch`: the agent's RSS, sampled every 50 ms.
- `LagProbe`: the agent's event loop as a peer sees it: an RTMP connection of its own that sends a Ping
  Request every 50 ms and times the Ping Response, which the relay writes from the same event-loop step
  as the read. A probe evicted by the connection cap reconnects.
The watches are threads and the probe a process of its own, so the attackers' work does not show as the agent's lag.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp
from tests.peers.wait import free_port, port_open, wait_until

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
HEALTHY_KEY = "healthy"


class ByteWatch:
    """Polls a growing file; `longest_pause_s(since)` is the longest time its size did not change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.growths: list[float] = []  # monotonic times at which the size was seen to grow
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="byte-watch")
        self._thread.start()

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                size = self.path.stat().st_size
                if size > last:
                    last = size
                    self.growths.append(time.monotonic())
            time.sleep(0.02)

    def flowing(self, within_s: float = 0.5) -> bool:
        return bool(self.growths) and time.monotonic() - self.growths[-1] < within_s

    def longest_pause_s(self, since: float) -> float:
        times = [t for t in self.growths if t >= since]
        points = [since, *times, time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(points))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RssWatch:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start_bytes = self.peak_bytes = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-watch")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_bytes = max(self.peak_bytes, self.process.memory_info().rss)
            time.sleep(0.05)

    def restart(self) -> None:
        self.start_bytes = self.peak_bytes = self.process.memory_info().rss

    @property
    def growth_mb(self) -> float:
        return (self.peak_bytes - self.start_bytes) / MB

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class LagProbe:
    """Ping Request / Ping Response round trips to the relay every 50 ms; `worst_s(since)` is the longest.

    The pinging runs in a process of its own (tests/hostile/lag_probe.py): in a thread of the test process it
    competed for the GIL with the attackers' event loop, and that wait (up to ~100 ms on a loaded 2-core
    machine) was counted as the agent's lag. CLOCK_MONOTONIC is one clock for every process, so its times
    compare with this process's `time.monotonic()`.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip)
        self.reconnects = 0
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("lag_probe.py")), str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True, name="lag-probe-reader")
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            kind, *values = line.split()
            if kind == "rtt":
                self.samples.append((float(values[0]), float(values[1])))
            elif kind == "reconnect":
                self.reconnects += 1

    def worst_s(self, since: float) -> float:
        return max((rtt for at, rtt in list(self.samples) if at >= since), default=float("inf"))

    def count(self, since: float) -> int:
        return sum(1 for at, _ in list(self.samples) if at >= since)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._thread.join(10)


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    api_port: int
    relay_port: int
    log_path: Path

    def health(self) -> dict[str, object]:
        response = httpx.get(f"http://127.0.0.1:{self.api_port}/api/v1/health", timeout=10)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def relay_sample(self) -> dict[str, object]:
        deadline = time.monotonic() + 10
        while not isinstance(relay := self.health()["relay"], dict):  # none before the relay's first sample
            assert time.monotonic() < deadline, "no relay sample in /api/v1/health"
            time.sleep(0.2)
        return relay

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_agent(tmp_path: Path, ingest_url: str, **relay: str) -> Iterator[Agent]:
    """`python -m agent.cli agent` with only what the relay needs (OBS and the ffmpeg source off)."""
    api_port, relay_port = free_port(), free_port()
    env = {
        **os.environ,
        "STREAMHEALTH_API__PORT": str(api_port),
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
        "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
        "STREAMHEALTH_SOURCES__NETWORK__ENABLED": "false",
        "STREAMHEALTH_INGEST__PRIMARY": ingest_url,
        "STREAMHEALTH_RELAY__LISTEN": f"127.0.0.1:{relay_port}",
        **{f"STREAMHEALTH_RELAY__{name.upper()}": value for name, value in relay.items()},
    }
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "agent"], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: port_open("127.0.0.1", api_port) and port_open("127.0.0.1", relay_port), 30, "the agent")
        yield Agent(process, api_port, relay_port, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def ffmpeg_healthy(url: str) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-b:v", "800k", "-g", "30", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url,
    ]  # fmt: skip


@dataclass
class Bed:
    nginx: NginxRtmp
    agent: Agent
    bytes_at_ingest: ByteWatch
    rss: RssWatch
    lag: LagProbe
    ffmpeg: subprocess.Popen[bytes]

    def begin(self) -> float:
        """Start an attack's measurement window: RSS from here; returns the start time for the others."""
        wait_until(lambda: self.bytes_at_ingest.flowing(), 20, "the healthy stream at nginx-rtmp")
        assert self.ffmpeg.poll() is None, "the healthy ffmpeg stream ended"
        self.rss.restart()
        return time.monotonic()

    def assert_unharmed(self, since: float) -> dict[str, float]:
        """The figures every relay attack is judged by, measured from `since` to now."""
        figures = {
            "rss_growth_mb": round(self.rss.growth_mb, 1),
            "longest_pause_at_ingest_s": round(self.bytes_at_ingest.longest_pause_s(since), 3),
            "worst_loop_lag_s": round(self.lag.worst_s(since), 4),
            "lag_samples": self.lag.count(since),
        }
        print("figures:", figures)
        assert self.ffmpeg.poll() is None, "the healthy ffmpeg stream was cut"
        assert figures["rss_growth_mb"] < 100, figures
        assert figures["longest_pause_at_ingest_s"] < 1.0, figures
        assert figures["lag_samples"] >= 10, figures
        assert figures["worst_loop_lag_s"] < 0.1, figures
        return figures


@contextlib.contextmanager
def healthy_bed(tmp_path: Path, **relay: str) -> Iterator[Bed]:
    record_dir = tmp_path / "rec"
    record_dir.mkdir()
    with (
        nginx_rtmp(record_dir=record_dir) as nginx,
        running_agent(tmp_path, nginx.url(HEALTHY_KEY), **relay) as agent,
    ):
        ffmpeg = subprocess.Popen(
            ffmpeg_healthy(f"rtmp://127.0.0.1:{agent.relay_port}/live/anykey"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        watch = ByteWatch(record_dir / f"{HEALTHY_KEY}.flv")
        rss = RssWatch(agent.process.pid)
        lag = LagProbe(agent.relay_port)
        try:
            wait_until(lambda: watch.flowing(), 30, "the healthy stream at nginx-rtmp")
            time.sleep(2)  # past the start: the agent's RSS settles with the stream flowing
            yield Bed(nginx, agent, watch, rss, lag, ffmpeg)
        finally:
            lag.stop()
            rss.stop()
            watch.stop()
            if ffmpeg.poll() is None:
                ffmpeg.kill()
            ffmpeg.wait(10)

"""Benchmark: the TUI fed updates of every metric, as a person would run it (a real terminal: a pty).

A child process runs the app in a pseudo-terminal (160x48 by default, so every byte Textual writes is
really produced and drained) and feeds it, through the agent client's own `feed()`, a full snapshot
(system, network, OBS, ffmpeg, bandwidth, alerts) per tick plus an alert change every 30 ticks.
The parent samples the child's CPU time and RSS with psutil and prints them.

Two runs by default:
  1. real time: 1 tick per second for `--realtime-s` seconds -> CPU % of one core at the real rate;
  2. stream time: `--stream-s` ticks (600 = 10 minutes of stream) fed `--speedup` times faster than
     real time -> memory over the whole stream, and CPU per tick. CPU at 1 Hz is then about
     (CPU per tick x 1 tick/s) + the idle cost measured in run 1; the figure is printed both ways.

    uv run python bench/tui.py                      # about 2 minutes
    uv run python bench/tui.py --speedup 1          # the full 10 minutes in real time
Targets: under 5% of one core, memory flat.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# --- child: the app in a terminal ----------------------------------------------------------------


def run_child(rate_hz: float, ticks: int) -> None:
    from datetime import timedelta

    from agent.models import FfmpegSample
    from tests.tui import data
    from tui.app import build_app
    from tui.client import AgentClient

    ffmpeg = FfmpegSample(fps=60, bitrate_bps=5_900_000, speed_ratio=1.0, drop_frames_total=3, frame=1000)
    payloads = []
    for i in range(120):  # distinct values, so every tile, sparkline and header really changes
        snap = data.snapshot(
            bitrate_bps=5_000_000 + (i * 7919 % 23) * 60_000,
            cpu=0.3 + (i * 31 % 17) / 40,
            dropped_ratio=(i % 9) / 500,
            rtt_ms=30 + (i * 13 % 40),
            duration_s=3600 + i,
            alerts=[data.alert("warning", alert_id="cpu")] if i % 40 > 20 else [],
        )
        snap = snap.model_copy(update={"ffmpeg": ffmpeg, "taken_at": data.NOW + timedelta(seconds=i)})
        payloads.append(data.tick_json(snap))
    raised = data.alert_json("raised", data.alert("critical"))
    cleared = data.alert_json("cleared", data.alert("critical").model_copy(update={"cleared_at": data.NOW}))

    client = AgentClient("http://127.0.0.1:9")  # never contacted: the bench feeds the client directly
    app = build_app(client, follow_events=False, agent_label="bench")
    app.bell = lambda: None  # type: ignore[method-assign]
    sent = 0

    def feed() -> None:
        nonlocal sent
        if sent >= ticks:
            app.exit()
            return
        client.feed("tick", payloads[sent % len(payloads)])
        if sent % 30 == 10:
            client.feed("alert", raised)
        elif sent % 30 == 25:
            client.feed("alert", cleared)
        sent += 1

    def start() -> None:
        client.attach(app.post_message)
        client.set_state("connected")
        app.set_interval(1 / rate_hz, feed)

    app.call_later(start)
    app.run()


# --- parent: measure -----------------------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    cpu_s: float
    rss_bytes: int


def measure(rate_hz: float, ticks: int, size: tuple[int, int], every_s: float) -> list[Sample]:
    import psutil

    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ["TERM"] = "xterm-256color"
        os.environ["COLUMNS"], os.environ["LINES"] = str(size[0]), str(size[1])
        run_child(rate_hz, ticks)
        os._exit(0)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    process = psutil.Process(pid)
    samples: list[Sample] = []
    started = time.monotonic()
    next_sample = started
    output_bytes = 0
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            output_bytes += len(chunk)
        now = time.monotonic()
        if now >= next_sample:
            try:
                times, memory = process.cpu_times(), process.memory_info()
            except psutil.NoSuchProcess:
                break
            samples.append(Sample(now - started, times.user + times.system, memory.rss))
            next_sample += every_s
    os.waitpid(pid, 0)
    print(f"  (terminal output drained: {output_bytes / 1e6:.1f} MB)")
    return samples


def report(title: str, samples: list[Sample], ticks: int, warmup_s: float) -> tuple[float, float]:
    steady = [s for s in samples if s.t_s >= warmup_s]
    if len(steady) < 2:
        print(f"{title}: too short to measure")
        return 0.0, 0.0
    print(f"\n{title}")
    print(f"  {'t (s)':>7} {'CPU % of a core':>16} {'RSS (MB)':>9}")
    previous = steady[0]
    for sample in steady[1:]:
        cpu = 100 * (sample.cpu_s - previous.cpu_s) / (sample.t_s - previous.t_s)
        print(f"  {sample.t_s:7.0f} {cpu:16.1f} {sample.rss_bytes / 2**20:9.1f}")
        previous = sample
    elapsed = steady[-1].t_s - steady[0].t_s
    cpu_mean = 100 * (steady[-1].cpu_s - steady[0].cpu_s) / elapsed
    rss = [s.rss_bytes / 2**20 for s in steady]
    third = max(1, len(rss) // 3)
    growth = sum(rss[-third:]) / third - sum(rss[:third]) / third
    print(
        f"  mean CPU {cpu_mean:.2f}% of one core over {elapsed:.0f} s; peak RSS {max(rss):.1f} MB; "
        f"RSS last third minus first third {growth:+.2f} MB"
    )
    return cpu_mean, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realtime-s", type=int, default=60, help="seconds of 1 Hz real-time feeding (run 1)")
    parser.add_argument("--stream-s", type=int, default=600, help="seconds of stream time to feed (run 2)")
    parser.add_argument("--speedup", type=float, default=10.0, help="how much faster than real time run 2 goes")
    parser.add_argument("--size", default="160x48", help="terminal size, e.g. 80x24")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))

    print(f"TUI benchmark at {width}x{height}, python {sys.version.split()[0]}, pid {os.getpid()}")
    print(f"\nRun 1: {args.realtime_s} ticks at 1 Hz (real time)")
    samples = measure(1.0, args.realtime_s, (width, height), every_s=5.0)
    cpu_1hz, _ = report("Run 1 (1 Hz, real time)", samples, args.realtime_s, warmup_s=5.0)

    print(f"\nRun 2: {args.stream_s} ticks ({args.stream_s / 60:.0f} min of stream) at {args.speedup:g} Hz")
    samples = measure(args.speedup, args.stream_s, (width, height), every_s=max(1.0, 30 / args.speedup))
    cpu_fast, elapsed = report(f"Run 2 ({args.speedup:g}x real time)", samples, args.stream_s, warmup_s=3.0)
    if elapsed:
        per_tick_ms = 10 * cpu_fast / args.speedup  # CPU % / rate = ms of CPU per tick (x10 for %->ms)
        print(
            f"  CPU per tick (incl. idle share): {per_tick_ms:.1f} ms -> at 1 Hz about {per_tick_ms / 10:.2f}% of a core"
        )
    print(
        f"\nResult: {cpu_1hz:.2f}% of one core at 1 Hz (target < 5%); memory: see the RSS trend of run 2 (target flat)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

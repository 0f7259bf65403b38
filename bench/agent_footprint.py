"""How light is the agent? Runs it for N seconds at 1 Hz with all local sources, and Glances beside it.

    uv run python bench/agent_footprint.py [--seconds 60]

Prints CPU seconds, % of one core and peak RSS for both, and the agent/Glances CPU ratio. Both run at the
same time on the same machine, so background load affects them alike. Glances runs headless
(`glances -q -t 1 --stop-after N`), refreshing every second like the agent. Targets for the agent:
at most 0.5% of one core, 60 MB RSS, and a fifth of Glances' CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import psutil


@dataclass
class Footprint:
    name: str
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    wall_seconds: float = 0.0

    @property
    def core_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0


def watch(processes: dict[str, subprocess.Popen[bytes]], seconds: float, settle_s: float) -> dict[str, Footprint]:
    """Sample each process tree's CPU time and RSS twice a second; measure after `settle_s` of start-up."""
    handles = {name: psutil.Process(process.pid) for name, process in processes.items()}
    results = {name: Footprint(name) for name in processes}
    time.sleep(settle_s)
    baseline = {name: _cpu_seconds(handle) for name, handle in handles.items()}
    started = time.monotonic()
    last_cpu = dict(baseline)
    while time.monotonic() - started < seconds:
        for name, handle in handles.items():
            try:
                last_cpu[name] = _cpu_seconds(handle)
                results[name].peak_rss_bytes = max(results[name].peak_rss_bytes, _rss_bytes(handle))
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.5)
    for name, result in results.items():
        result.cpu_seconds = last_cpu[name] - baseline[name]
        result.wall_seconds = time.monotonic() - started
    return results


def _tree(handle: psutil.Process) -> list[psutil.Process]:
    return [handle, *handle.children(recursive=True)]


def _cpu_seconds(handle: psutil.Process) -> float:
    total = 0.0
    for process in _tree(handle):
        times = process.cpu_times()
        total += times.user + times.system
    return total


def _rss_bytes(handle: psutil.Process) -> int:
    return sum(process.memory_info().rss for process in _tree(handle))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window (default 60)")
    parser.add_argument("--settle", type=float, default=5.0, help="start-up seconds not measured (default 5)")
    parser.add_argument("--no-glances", action="store_true", help="measure the agent alone")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="streamhealth-bench-")
    env = {
        **os.environ,
        "STREAMHEALTH_API__PORT": "0",
        "STREAMHEALTH_LOGS__DIR": os.path.join(workdir, "logs"),
        "STREAMHEALTH_SAMPLING__INTERVAL_S": "1.0",
    }
    processes = {
        "streamhealth agent": subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "agent", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    }
    glances = shutil.which("glances")
    if not args.no_glances:
        if glances is None:
            print("glances not found: install the dev dependencies (uv sync) or pass --no-glances", file=sys.stderr)
            return 2
        refreshes = int(args.seconds + args.settle + 10)
        processes["glances -q -t 1"] = subprocess.Popen(
            [glances, "-q", "-t", "1", "--stop-after", str(refreshes)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": workdir},
        )
    try:
        results = watch(processes, args.seconds, args.settle)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.seconds:.0f} s at 1 Hz, measured after {args.settle:.0f} s of start-up, {psutil.cpu_count()} cores")
    print(f"{'process':<22} {'CPU s':>8} {'% of a core':>12} {'peak RSS MB':>12}")
    for result in results.values():
        print(
            f"{result.name:<22} {result.cpu_seconds:>8.2f} {result.core_percent:>12.2f} "
            f"{result.peak_rss_bytes / 1e6:>12.1f}"
        )
    agent = results["streamhealth agent"]
    if "glances -q -t 1" in results and results["glances -q -t 1"].cpu_seconds > 0:
        ratio = agent.cpu_seconds / results["glances -q -t 1"].cpu_seconds
        print(f"agent CPU / Glances CPU = {ratio:.2f}  (target <= 0.20)")
    print(
        f"targets: <= 0.5% of a core ({'met' if agent.core_percent <= 0.5 else 'NOT met'}), "
        f"<= 60 MB RSS ({'met' if agent.peak_rss_bytes <= 60e6 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

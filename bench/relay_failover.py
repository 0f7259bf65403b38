"""Relay resilience figures: the failover fault matrix, failover time, and CPU with 3 destinations against 1
(next to nginx-rtmp's push).

Run (root not needed but for the cut link): `uv run python bench/relay_failover.py [--failovers 10]
[--cpu-seconds 15] [--runs 3]`; the fault matrix alone: `uv run python bench/relay_failover.py --matrix
[--matrix-runs 50] [--jobs 2] [--faults kill,close,reset,cut] [--moments ...] [--loops asyncio,uvloop]`

- Fault matrix (issue 25; tests/agent/relay/fault_matrix.py): each fault (kill -9, polite close, reset, cut
  link) at each moment (handshake, connect, publish, mid-GOP, while the queue drains, during a reconnect,
  twice in a row), --matrix-runs runs per case, the event loop alternating run by run (so half on each);
  relay.stall_s 1 and failover_after_s 1, so every failover must take at most 3 s. Prints, per case, the
  distribution of failover times (fault -> first picture recorded at the next ingest) and every failed
  run with its cause. Runs go round the cases, so a run stopped early still covers every case evenly;
  --jobs runs that many worker processes side by side (each case's runs shared between them); each
  run's result is a JSON line in --results (default: a temporary file), and --report FILE prints an
  earlier file's summary again.

- Failover: ffmpeg publishes 1.5 Mbit/s through the relay to two recording nginx-rtmp ingests with the
  default settings (relay.failover_after_s = 3). Each round kills the ingest in use and times "last frame at
  the killed ingest" (its recording's last write) to "first picture at the other one" (polled every 5 ms);
  the killed one is restarted for the next round, so the relay goes round the list. Also prints the
  longest gap between ffmpeg's -progress reports (the encoder must not notice).
- Cut link: the same with the primary in a network namespace whose link is taken down (packets dropped, no
  reset), so only the stall rule notices: expect about stall_s + failover_after_s (needs root).
- CPU: ffmpeg publishes 6 Mbit/s for --cpu-seconds through the relay to 1 and to 3 loopback nginx-rtmp
  destinations; the relay's CPU is this process's CPU time over the window (the relay runs in it). Side by
  side: one nginx-rtmp relaying the same stream with 1 and 3 `push` directives (its utime+stime).
Timings on a shared 2-core machine are noisy: each CPU figure is given as mean and min-max over --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.relay.relay import Relay
from agent.relay.settings import RelaySettings
from agent.rtmp import flv
from tests.agent.relay.failover_peers import ffmpeg_publishing, first_picture_seen
from tests.agent.relay.fault_matrix import BOUND_S, FAILOVER_AFTER_S, FAULTS, MOMENTS, STALL_S, loop_runner, run_case
from tests.peers.netns import can_use_netns, namespace_host
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def _wait(condition: object, timeout_s: float, what: str, interval_s: float = 0.005) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(interval_s)


def _pictures(path: Path) -> int:
    if not path.exists():
        return 0
    with contextlib.suppress(ValueError, IndexError):
        return sum(1 for t in flv.read_flv(path.read_bytes()) if t.tag_type == flv.TAG_VIDEO)
    return 0


# ------------------------------------------------------------------------------------------- failover


async def bench_failover(rounds: int, folder: Path) -> None:
    dirs = [folder / "a", folder / "b"]
    for path in dirs:
        path.mkdir()
    stacks = [contextlib.ExitStack(), contextlib.ExitStack()]
    servers: list[NginxRtmp] = [stacks[i].enter_context(nginx_rtmp(record_dir=dirs[i])) for i in range(2)]
    ports = [server.port for server in servers]
    urls = [server.url("bench") for server in servers]
    times_s: list[float] = []
    relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0"}), urls)
    await relay.start()
    try:
        seconds = rounds * 6 + 10
        async with ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", seconds) as ffmpeg:
            destination = relay.destinations[0]
            await _wait(lambda: first_picture_seen(dirs[0] / "bench.flv"), 20, "the first ingest")
            for _ in range(rounds):
                current = destination.rotation.index
                other = 1 - current
                await _wait(lambda: destination.state == "live", 20, "a live connection")
                await asyncio.sleep(2.0)  # settle: the backlog of the last failover is out, the stream is live
                target = dirs[other] / "bench.flv"
                target.unlink(missing_ok=True)
                servers[current].process.kill()
                servers[current].process.wait()
                last_frame_at = (dirs[current] / "bench.flv").stat().st_mtime
                await _wait(lambda t=target: first_picture_seen(t), 15, "the other ingest")
                times_s.append(time.time() - last_frame_at)
                stacks[current].close()
                (dirs[current] / "bench.flv").unlink(missing_ok=True)
                stacks[current] = contextlib.ExitStack()
                servers[current] = stacks[current].enter_context(
                    nginx_rtmp(port=ports[current], record_dir=dirs[current])
                )
            ffmpeg.process.terminate()
            await ffmpeg.process.wait()
        gap_s = ffmpeg.longest_progress_gap_s
        switches = list(destination.switches)
    finally:
        await relay.close()
        for stack in stacks:
            stack.close()
    ordered = sorted(times_s)
    print(f"failover (kill -9 of the ingest in use, defaults: failover_after_s 3), {len(times_s)} failovers:")
    print(f"  last frame at the old ingest -> first picture at the new one: p50 {statistics.median(ordered):.2f} s, "
          f"min {ordered[0]:.2f} s, max {ordered[-1]:.2f} s")  # fmt: skip
    print(f"  all: {', '.join(f'{value:.2f}' for value in times_s)}")
    lost = [switch.lost_frames for switch in switches]
    print(f"  frames lost per failover (relay's own account): {lost}")
    print(f"  ffmpeg: longest gap between -progress reports {gap_s:.2f} s (reports every 0.25 s), same process")


async def bench_cut_failover(rounds: int, folder: Path) -> None:
    """The primary's link cut in a namespace (packets dropped, no reset): only the stall rule can tell."""
    usable, reason = can_use_netns()
    if not usable:
        print(f"failover on a cut link: skipped ({reason})")
        return
    times_s: list[float] = []
    for index in range(rounds):
        far_dir, near_dir = folder / f"far{index}", folder / f"near{index}"
        far_dir.mkdir()
        near_dir.mkdir()
        with (
            namespace_host() as host,
            nginx_rtmp(host=host.address, netns_exec=host.exec_args(), record_dir=far_dir) as far,
            nginx_rtmp(record_dir=near_dir) as near,
        ):
            relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0"}), [far.url("cut"), near.url("cut")])
            await relay.start()
            try:
                async with ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", 20) as ffmpeg:
                    await _wait(lambda d=far_dir: first_picture_seen(d / "cut.flv"), 20, "the far ingest", 0.05)
                    await asyncio.sleep(2.0)
                    host.cut()
                    last_frame_at = (far_dir / "cut.flv").stat().st_mtime
                    await _wait(lambda d=near_dir: first_picture_seen(d / "cut.flv"), 20, "the backup")
                    times_s.append(time.time() - last_frame_at)
                    ffmpeg.process.terminate()
                    await ffmpeg.process.wait()
            finally:
                await relay.close()
    ordered = sorted(times_s)
    print(f"failover on a cut link (stall rule, defaults: stall_s 3 + failover_after_s 3), {len(ordered)} runs:")
    print(f"  last frame at the old ingest -> first picture at the backup: p50 {statistics.median(ordered):.2f} s, "
          f"min {ordered[0]:.2f} s, max {ordered[-1]:.2f} s")  # fmt: skip


# ------------------------------------------------------------------------------------------------ CPU


async def _relay_cpu(count: int, seconds: float, folder: Path) -> float:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(nginx_rtmp()) for _ in range(count)]
        settings = {"listen": "127.0.0.1:0", "destinations": [s.url("cpu") for s in servers[1:]]}
        relay = Relay(RelaySettings.model_validate(settings), [servers[0].url("cpu")])
        await relay.start()
        try:
            async with ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", seconds + 3, "6000k") as ffmpeg:
                await _wait(lambda: relay.ingress.publishing and relay.ingress.video_pictures_total > 30, 20,
                            "the stream", 0.05)  # fmt: skip
                cpu_before, wall_before = time.process_time(), time.monotonic()
                await asyncio.sleep(seconds)
                cpu = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
                ffmpeg.process.terminate()
                await ffmpeg.process.wait()
        finally:
            await relay.close()
    return cpu


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def _nginx_push_cpu(count: int, seconds: float) -> float:
    with contextlib.ExitStack() as stack:
        targets = [stack.enter_context(nginx_rtmp()) for _ in range(count)]
        pushes = " ".join(f"push rtmp://127.0.0.1:{t.port}/live/cpu;" for t in targets)
        front = stack.enter_context(nginx_rtmp(extra_application_config=pushes))
        async with ffmpeg_publishing(front.url("cpu"), seconds + 3, "6000k") as ffmpeg:
            await asyncio.sleep(2)
            cpu_before, wall_before = _process_cpu_s(front.process.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu = (_process_cpu_s(front.process.pid) - cpu_before) / (time.monotonic() - wall_before)
            ffmpeg.process.terminate()
            await ffmpeg.process.wait()
    return cpu


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values) * 100:5.1f} % (min {min(values) * 100:.1f}, max {max(values) * 100:.1f})"


async def bench_cpu(seconds: float, runs: int, folder: Path) -> None:
    print(f"CPU, % of one core, 6 Mbit/s 30 fps from ffmpeg, {seconds:g} s windows, {runs} runs each:")
    for count in (1, 3):
        relay = [await _relay_cpu(count, seconds, folder) for _ in range(runs)]
        nginx = [await _nginx_push_cpu(count, seconds) for _ in range(runs)]
        print(f"  {count} destination(s): relay {_spread(relay)}   nginx-rtmp push {_spread(nginx)}")


# ------------------------------------------------------------------------------------------ fault matrix


RUN_WATCHDOG_S = 60


class RunHung(TimeoutError):
    pass


def _hung(signum: int, frame: object) -> None:
    raise RunHung(f"the run hung: no end within {RUN_WATCHDOG_S} s (the event loop stood still?)")


def _matrix_worker(args: argparse.Namespace) -> None:
    """One worker: runs its share of the matrix (run r of case c when (r * cases + c) % jobs == shard)."""
    signal.signal(signal.SIGALRM, _hung)
    faults, moments, loops = args.faults.split(","), args.moments.split(","), args.loops.split(",")
    if "cut" in faults and not can_use_netns()[0]:
        faults.remove("cut")
    cases = [(fault, moment) for fault in faults for moment in moments]
    with Path(args.results).open("a") as out:
        for run in range(args.matrix_runs):
            for index, (fault, moment) in enumerate(cases):
                if (run * len(cases) + index) % args.jobs != args.shard:
                    continue
                loop = loops[run % len(loops)]
                with tempfile.TemporaryDirectory(prefix="streamhealth-matrix-") as folder, loop_runner(loop) as runner:
                    started = time.monotonic()
                    signal.alarm(RUN_WATCHDOG_S)  # a run that hangs the loop becomes a failed run, not a hung bench
                    try:
                        result = runner.run(run_case(fault, moment, Path(folder), seed=run * 7919 + index))  # type: ignore[arg-type]
                    finally:
                        signal.alarm(0)
                record = {**dataclasses.asdict(result), "run": run, "wall_s": round(time.monotonic() - started, 2)}
                out.write(json.dumps(record) + "\n")
                out.flush()


def _matrix(args: argparse.Namespace) -> None:
    results = args.results or tempfile.mkstemp(prefix="relay-matrix-", suffix=".jsonl")[1]
    print(f"fault matrix: {args.matrix_runs} runs per case, {args.jobs} worker(s); results in {results} "
          f"(the relay's log in {results}.log)", flush=True)  # fmt: skip
    log = Path(f"{results}.log").open("ab")  # noqa: SIM115 - the workers write it until they end
    workers = [
        subprocess.Popen([sys.executable, __file__, "--matrix-worker", "--shard", str(shard), "--results", results,
                          "--jobs", str(args.jobs), "--matrix-runs", str(args.matrix_runs), "--faults", args.faults,
                          "--moments", args.moments, "--loops", args.loops], stdout=subprocess.DEVNULL,
                         stderr=log)
        for shard in range(args.jobs)
    ]  # fmt: skip
    try:
        for worker in workers:
            worker.wait()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
    _matrix_report(Path(results))


def _matrix_report(path: Path) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    cases: dict[tuple[str, str], list[dict[str, object]]] = {}
    for record in records:
        cases.setdefault((str(record["fault"]), str(record["moment"])), []).append(record)
    every: list[float] = []
    print(f"fault matrix: {len(records)} runs, {sum(1 for r in records if not r['problems'])} passed "
          f"(bound: stall_s {STALL_S:g} + failover_after_s {FAILOVER_AFTER_S:g} + 1 = {BOUND_S:g} s)")  # fmt: skip
    print(f"  {'fault':6} {'moment':12} {'runs':>4} {'ok':>4} {'asyncio/uvloop':>14}   failover s: "
          f"{'min':>5} {'p50':>5} {'p90':>5} {'p99':>5} {'max':>5}")  # fmt: skip
    for (fault, moment), runs in cases.items():
        times = sorted(float(t) for r in runs for t in r["failover_s"])  # type: ignore[attr-defined]
        every.extend(times)
        loops = f"{sum(r['loop'] == 'asyncio' for r in runs)}/{sum(r['loop'] == 'uvloop' for r in runs)}"
        ok = sum(1 for r in runs if not r["problems"])
        figures = " ".join(f"{_quantile(times, q):5.2f}" for q in (0.0, 0.5, 0.9, 0.99, 1.0)) if times else "-"
        print(f"  {fault:6} {moment:12} {len(runs):4d} {ok:4d} {loops:>14}   {'':11} {figures}")
    if every:
        every.sort()
        figures = ", ".join(f"{name} {_quantile(every, q):.2f}" for name, q in
                            (("min", 0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1)))  # fmt: skip
        print(f"  all {len(every)} failovers: {figures} s")
    failed = [r for r in records if r["problems"]]
    print(f"failed runs: {len(failed)}")
    for r in failed:
        print(f"  {r['fault']} {r['moment']} run {r['run']} on {r['loop']} ({r['note']}): {'; '.join(r['problems'])}")  # type: ignore[arg-type]


def _quantile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--cpu-seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cut-runs", type=int, default=3, help="failovers on a cut link (needs root)")
    parser.add_argument("--skip", choices=["failover", "cut", "cpu"], action="append", default=[])
    parser.add_argument("--matrix", action="store_true", help="run the fault matrix (only)")
    parser.add_argument("--matrix-runs", type=int, default=50, help="runs per (fault, moment)")
    parser.add_argument("--jobs", type=int, default=2, help="matrix worker processes side by side")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--moments", default=",".join(MOMENTS))
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--results", default="", help="the matrix's JSON lines (appended to)")
    parser.add_argument("--report", default="", help="print the summary of an earlier --results file")
    parser.add_argument("--matrix-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        _matrix_report(Path(args.report))
        return
    if args.matrix_worker:
        _matrix_worker(args)
        return
    if args.matrix:
        _matrix(args)
        return
    asyncio.run(_figures(args))


async def _figures(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="streamhealth-bench-") as folder:
        if "failover" not in args.skip:
            await bench_failover(args.failovers, Path(folder))
        if "cut" not in args.skip:
            await bench_cut_failover(args.cut_runs, Path(folder))
        if "cpu" not in args.skip:
            await bench_cpu(args.cpu_seconds, args.runs, Path(folder))


if __name__ == "__main__":
    main()

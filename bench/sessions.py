"""What do stream sessions cost? A 6-hour session at 1 Hz (21,600 ticks of realistic snapshots) run through the
agent's session recorder, then read back from the log.

    uv run python bench/sessions.py [--hours 6] [--runs 3]

Prints: the recorder's time per tick and the memory its summary holds after the whole session (next to what
keeping the ticks in a list would hold); the log's size; `SessionIndex.sessions()` on the finished log (reads
only the session records) and on a killed agent's log (rebuilds the summary from every tick); and, side by side,
what a user would otherwise run: jq computing just the mean bitrate of the session's ticks.
Timings vary with the machine's load: each is the median of --runs, with the spread.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.logs.session_index import SessionIndex
from agent.models import (
    AgentInfo,
    HealthSnapshot,
    NetworkSample,
    ObsSample,
    SourceStatus,
    SystemSample,
    TargetStability,
    TickRecord,
)
from agent.sessions.recorder import SessionRecorder

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
INFO = AgentInfo(version="0.1.0", pid=4242, started_at=T0, uptime_s=0, platform="twitch")


def snapshot(second: int) -> HealthSnapshot:
    at = T0 + timedelta(seconds=second)
    wobble = (second * 7919) % 13
    return HealthSnapshot(
        taken_at=at,
        agent=INFO,
        overall="warning" if wobble == 0 else "ok",
        sources={
            name: SourceStatus(name=name, state="ok", last_sample_at=at, age_s=0.2)
            for name in ("system", "network", "obs")
        },
        obs=ObsSample(
            taken_at=at,
            connection="connected",
            streaming=True,
            output_bitrate_bps=6_000_000 + wobble * 20_000,
            output_bytes_total=second * 750_000,
            frames_output_total=second * 60,
            frames_dropped_network_total=second // 50,
            frames_encoded_total=second * 60,
            frames_skipped_encoding_total=second // 400,
            frames_rendered_total=second * 60,
            frames_missed_rendering_total=0,
            active_fps=60.0,
            configured_fps=60.0,
            obs_cpu_usage_ratio=0.22,
        ),
        network=NetworkSample(
            taken_at=at,
            ingest_reachable=True,
            ingest_rtt_ms=35 + wobble,
            ingest_rtt_p95_ms=48 + wobble,
            ingest_jitter_ms=2 + wobble / 4,
            ingest_loss_ratio=0.0 if wobble else 0.01,
            targets=[TargetStability(name="live.twitch.tv:1935", role="primary", reachable=True, rtt_p50_ms_10s=35)],
        ),
        system=SystemSample(
            taken_at=at,
            cpu_usage_ratio=0.4 + wobble / 50,
            cpu_per_core_ratio=[0.4] * 8,
            cpu_count_logical=8,
            memory_total_bytes=16 << 30,
            memory_available_bytes=8 << 30,
            memory_used_ratio=0.5,
            swap_total_bytes=0,
            swap_used_ratio=0.0,
        ),
    )


def record_session(ticks: int, log_path: Path) -> tuple[float, int, int, int]:
    """Run the recorder over `ticks` snapshots, writing the log; (s per tick, summary bytes, list bytes, lines).

    Timed without tracemalloc (it slows allocation-heavy code several times); memory measured in a second
    pass under tracemalloc."""
    recorder = SessionRecorder(gap_s=30, interval_s=1.0, platform="twitch", configured_kbps=(6000, 160))
    lines = 0
    elapsed = 0.0
    with log_path.open("w", encoding="utf-8") as log:
        for second in range(ticks):  # snapshots made one at a time, as the agent does: no big heap for the GC
            snap = snapshot(second)
            started = time.perf_counter()
            records = recorder.before_tick(snap, float(second))
            tick = recorder.observe(TickRecord(snapshot=snap))
            elapsed += time.perf_counter() - started
            for record in [*records, tick]:
                log.write(record.model_dump_json() + "\n")
                lines += 1
        for record in recorder.close(float(ticks), detail="bench"):
            log.write(record.model_dump_json() + "\n")
            lines += 1

    recorder = SessionRecorder(gap_s=30, interval_s=1.0, platform="twitch", configured_kbps=(6000, 160))
    gc.collect()
    tracemalloc.start()
    for second in range(ticks):
        snap = snapshot(second)
        recorder.before_tick(snap, float(second))
        recorder.observe(TickRecord(snapshot=snap))
    del snap
    gc.collect()
    summary_bytes = tracemalloc.get_traced_memory()[0]  # what the recorder still holds: ticks were dropped
    tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    kept = [TickRecord(snapshot=snapshot(second)) for second in range(ticks)]
    list_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return elapsed / ticks, summary_bytes, list_bytes, lines


def timed(runs: int, work: object) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ticks = int(args.hours * 3600)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        log_path = directory / "streamhealth-20261125T180000Z-4242.jsonl"
        per_tick_s, summary_bytes, list_bytes, lines = record_session(ticks, log_path)
        size = log_path.stat().st_size
        print(f"session: {ticks} ticks ({args.hours:g} h at 1 Hz), log {lines} lines, {size / 1e6:.1f} MB")
        print(f"recorder: {per_tick_s * 1e6:.0f} us per tick (tagging + summary, in the agent's tick)")
        print(
            f"memory the live session holds after it: {summary_bytes / 1024:.1f} KiB "
            f"(keeping the ticks in a list instead: {list_bytes / 1e6:.0f} MB)"
        )

        def list_sessions() -> None:
            [summary] = SessionIndex(directory).sessions()
            assert summary.ticks_written == ticks

        median, low, high = timed(args.runs, list_sessions)
        print(
            f"logs list, finished session (reads session records only): {median:.2f} s (min {low:.2f}, max {high:.2f})"
        )

        killed = directory / "killed"
        killed.mkdir()
        with log_path.open() as source, (killed / "streamhealth-20261125T180000Z-999999999.jsonl").open("w") as out:
            for line in source:
                if '"type":"session_ended"' not in line[:60] and '"type":"session_summary"' not in line[:60]:
                    out.write(line)

        def rebuild() -> None:
            [summary] = SessionIndex(killed).sessions()
            assert summary.reconstructed and summary.ticks_written == ticks

        median, low, high = timed(args.runs, rebuild)
        print(f"logs list, killed agent (rebuilds from every tick): {median:.2f} s (min {low:.2f}, max {high:.2f})")

        if shutil.which("jq"):
            program = 'select(.type=="tick" and .session_id!=null) | .snapshot.obs.output_bitrate_bps'

            def jq_mean() -> None:
                values = subprocess.run(["jq", program, str(log_path)], capture_output=True, text=True, check=True)
                numbers = [float(v) for v in values.stdout.split()]
                assert len(numbers) == ticks

            median, low, high = timed(args.runs, jq_mean)
            print(f"jq, only the mean bitrate of the session's ticks: {median:.2f} s (min {low:.2f}, max {high:.2f})")
        else:
            print("jq not installed: no side-by-side figure (apt install jq)")


if __name__ == "__main__":
    main()

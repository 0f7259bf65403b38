"""Cost of the encoder sources' per-message work, so we know they stay light beside an encoder.

Run: `uv run python bench/encoder_sources.py` (it replays the recordings in tests/fixtures/)
Prints microseconds per ffmpeg -progress block (parse + tracker), per OBS reply decoded, and per OBS
sample derived (GetStats + GetStreamStatus -> ObsSample). At 1-4 polls per second these are the whole
CPU cost apart from the socket itself.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from agent.ffmpeg.progress import ProgressParser, ProgressTracker
from agent.models import EncoderSettings
from agent.obs.derive import ObsDeriver
from agent.obs.protocol import ObsProtocol

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def _per_call_us(total_s: float, calls: int) -> float:
    return total_s / calls * 1e6


def bench_ffmpeg(rounds: int = 2000) -> None:
    data = (FIXTURES / "ffmpeg-5.1" / "progress.txt").read_bytes()
    blocks_per_round = data.count(b"progress=")
    tracker = ProgressTracker("file")
    started = time.perf_counter()
    now = 0.0
    for _ in range(rounds):
        parser = ProgressParser()
        for block in parser.feed(data):
            now += 1.0
            tracker.update(now, block)
    elapsed = time.perf_counter() - started
    print(f"ffmpeg -progress: {_per_call_us(elapsed, rounds * blocks_per_round):.1f} us per block (parse + sample)")


def bench_obs(rounds: int = 5000) -> None:
    lines = [
        json.loads(line) for line in (FIXTURES / "obs-29.0.2" / "websocket-session.jsonl").read_text().splitlines()
    ]
    stats = next(
        entry["msg"]["d"] for entry in lines if entry["dir"] == "recv" and entry["msg"]["d"].get("requestId") == "r7"
    )
    status = next(
        entry["msg"]["d"] for entry in lines if entry["dir"] == "recv" and entry["msg"]["d"].get("requestId") == "r8"
    )
    protocol = ObsProtocol()
    protocol.receive_text(json.dumps({"op": 0, "d": {"rpcVersion": 1}}))
    protocol.receive_text(json.dumps({"op": 2, "d": {"negotiatedRpcVersion": 1}}))
    started = time.perf_counter()
    for _ in range(rounds):
        request_id = protocol.request("GetStats")
        protocol.data_to_send()
        protocol.receive_text(json.dumps({"op": 7, "d": {**stats, "requestId": request_id}}))
        protocol.replies_received()
    elapsed = time.perf_counter() - started
    print(f"obs-websocket: {_per_call_us(elapsed, rounds):.1f} us per request/reply (encode + decode + match)")

    deriver = ObsDeriver()
    settings = EncoderSettings(fps=30.0)
    tracemalloc.start()
    started = time.perf_counter()
    for second in range(rounds):
        stats_now = {**stats["responseData"], "outputTotalFrames": 30 * second, "renderTotalFrames": 30 * second}
        status_now = {
            **status["responseData"],
            "outputTotalFrames": 30 * second,
            "outputBytes": 312_500 * second,
        }
        deriver.update(float(second) / 4, stats_now, status_now, settings)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"obs derive: {_per_call_us(elapsed, rounds):.1f} us per sample; window memory peak {peak / 1024:.0f} KiB")


if __name__ == "__main__":
    bench_ffmpeg()
    bench_obs()

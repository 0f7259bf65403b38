"""How fast the RTMP core parses and writes: MB/s for the recorded OBS session, fed as TCP would deliver it.

Run: `uv run python bench/rtmp_parse.py [path/to/rtmp-publish.c2s.bin]` (default: OBS's recording in
tests/fixtures). The relay needs ~1 MB/s per stream; these figures say how much headroom one core has.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agent.rtmp.chunk_writer import ChunkWriter
from agent.rtmp.connection import Role, RtmpConnection
from agent.rtmp.synthetic import SyntheticStream

REPEATS = 20


def _fixture() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    return Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "obs-29.0.2" / "rtmp-publish.c2s.bin"


def parse_rate(data: bytes, piece: int) -> tuple[float, int]:
    view = memoryview(data)
    started = time.perf_counter()
    events = 0
    for _ in range(REPEATS):
        connection = RtmpConnection(Role.SERVER)
        for start in range(0, len(data), piece):
            connection.receive_data(view[start : start + piece])
            events += len(connection.events_received())
    elapsed = time.perf_counter() - started
    return len(data) * REPEATS / elapsed / 1e6, events // REPEATS


def write_rate(chunk_size: int) -> float:
    stream = SyntheticStream(video_bitrate_bps=8_000_000)
    frames = [stream.next_frame() for _ in range(2000)]
    writer = ChunkWriter(chunk_size)
    started = time.perf_counter()
    written = 0
    for frame in frames:
        written += len(writer.write(6 if frame.kind == "video" else 4, frame.timestamp_ms, 9, 1, frame.payload))
    return written / (time.perf_counter() - started) / 1e6


def main() -> None:
    path = _fixture()
    data = path.read_bytes()
    print(f"input: {path} ({len(data) / 1e6:.2f} MB, OBS 29, chunk size 4096)")
    for piece, label in ((len(data), "whole buffer"), (65536, "64 KiB reads"), (1460, "1460 B segments")):
        rate, events = parse_rate(data, piece)
        print(f"parse  {label:<16} {rate:8.1f} MB/s  ({events} events per pass)")
    started = time.perf_counter()
    stream = SyntheticStream(video_bitrate_bps=8_000_000)
    produced = sum(len(stream.next_frame().payload) for _ in range(5000))
    print(f"synthetic frames 8 Mbit/s     {produced / (time.perf_counter() - started) / 1e6:8.1f} MB/s")
    for chunk_size in (128, 4096):
        print(f"write  chunk size {chunk_size:<5}      {write_rate(chunk_size):8.1f} MB/s")


if __name__ == "__main__":
    main()

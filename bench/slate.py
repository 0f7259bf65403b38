"""Disconnect protection's costs: making a slate, and the relay's CPU while it holds a broadcast with one.

Run: `uv run python bench/slate.py [--runs 3] [--hold-seconds 15] [--making-only]`

- Making: the slate for 720p30 and 1080p60, H.264 high (x264) and HEVC Main (x265; 1080p60 in Main 10
  too), AAC 48 kHz stereo, each --runs times into an empty folder: wall time and the maker process's peak RSS (it is the only process that loads PyAV), and this
  process's RSS before and after (what the agent pays: the loaded slate).
- Holding: an encoder publishes 1280x720 30 fps through the relay, is killed with -9, and the relay holds
  with the slate for --hold-seconds; the relay's CPU is this process's CPU time over that window (the relay
  runs in it). H.264: ffmpeg (libx264) to nginx-rtmp. HEVC: x265 over enhanced RTMP (PyAV,
  tests/peers/hevc_publisher.py) to FFmpeg's own RTMP server (Debian's nginx-rtmp cannot take HEVC). Side by
  side, what a user would otherwise run: ffmpeg sending a still picture and silence (`-loop 1 -i brb.png`,
  AAC) with libx264 veryfast to the same nginx-rtmp, or with libx265 ultrafast to `-f null` (Debian's
  ffmpeg 5.1 cannot put HEVC in FLV): its CPU over the same time.
Timings on a shared 2-core machine are noisy: mean and min-max over --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.relay.relay import Relay
from agent.relay.settings import RelaySettings
from agent.relay.slate import SlateCache
from agent.relay.stream_shape import AudioShape, StreamShape, VideoShape
from tests.peers.nginx_rtmp import nginx_rtmp
from tests.peers.pyav_ingest import pyav_ingest

SHAPES = {
    "720p30": StreamShape(VideoShape("avc", 100, 0, 31, 1280, 720, 30, 1), AudioShape("aac", 2, 48000, 2)),
    "1080p60": StreamShape(VideoShape("avc", 100, 0, 42, 1920, 1080, 60, 1), AudioShape("aac", 2, 48000, 2)),
    "HEVC 720p30": StreamShape(VideoShape("hevc", 1, 0, 93, 1280, 720, 30, 1), AudioShape("aac", 2, 48000, 2)),
    "HEVC 1080p60": StreamShape(VideoShape("hevc", 1, 0, 123, 1920, 1080, 60, 1), AudioShape("aac", 2, 48000, 2)),
    "HEVC Main 10 1080p60": StreamShape(
        VideoShape("hevc", 2, 0, 123, 1920, 1080, 60, 1, bit_depth=10), AudioShape("aac", 2, 48000, 2)
    ),
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def spread(values: list[float], unit: str, digits: int = 2) -> str:
    return f"{statistics.mean(values):.{digits}f} {unit} (min {min(values):.{digits}f}, max {max(values):.{digits}f})"


async def making(runs: int) -> None:
    for name, shape in SHAPES.items():
        seconds, peaks, growth, slate_bytes = [], [], [], 0
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as folder:
                before = rss_bytes()
                cache = SlateCache(Path(folder))
                started = time.monotonic()
                slate = await cache.get(shape, timeout_s=120)
                seconds.append(time.monotonic() - started)
                assert slate is not None and cache.last_report is not None, cache.failures
                peaks.append((cache.last_report.peak_rss_bytes or 0) / 1e6)
                growth.append((rss_bytes() - before) / 1e6)
                slate_bytes = slate.size_bytes
        print(
            f"making the {name} slate: {spread(seconds, 's')}; the maker's peak RSS {spread(peaks, 'MB', 0)}; "
            f"this process's RSS grew {spread(growth, 'MB', 1)} (slate in memory: {slate_bytes} bytes)"
        )


def ffmpeg_publish(url: str, seconds: float) -> list[str]:
    return ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
            "-b:v", "3000k", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-f", "flv", url]  # fmt: skip


def hevc_publish(url: str, seconds: float) -> list[str]:
    """OBS-style HEVC over enhanced RTMP (x265 in PyAV's FFmpeg 8: the system's ffmpeg 5.1 cannot send it)."""
    return [sys.executable, "-m", "tests.peers.hevc_publisher", url, str(seconds), "--size", "1280x720"]


def still_picture(picture: Path, url: str | None, seconds: float, codec: str) -> list[str]:
    """What a user would otherwise run: ffmpeg sending a still picture and silence. For HEVC to `-f null`
    (ffmpeg 5.1 cannot put HEVC in FLV): the encoding, which is nearly all of its cost, without the network."""
    encoder = ["-c:v", "libx264", "-preset", "veryfast"] if codec == "avc" else ["-c:v", "libx265", "-preset",
               "ultrafast", "-x265-params", "log-level=error"]  # fmt: skip
    out = ["-f", "flv", url] if url else ["-f", "null", "-"]
    return ["ffmpeg", "-nostdin", "-v", "error", "-re", "-loop", "1", "-i", str(picture), "-f", "lavfi", "-i",
            "anullsrc=r=48000:cl=stereo", "-t", str(seconds), "-r", "30", *encoder, "-g", "60", "-pix_fmt",
            "yuv420p", "-c:a", "aac", *out]  # fmt: skip


@contextlib.contextmanager
def ingest_for(codec: str, folder: Path) -> Iterator[tuple[str, str | None]]:
    """(the relay's ingest URL, where ffmpeg's still picture goes): nginx-rtmp for H.264; for HEVC, which
    Debian's nginx-rtmp cannot take (tests/peers/pyav_ingest.py), FFmpeg's own RTMP server."""
    if codec == "avc":
        with nginx_rtmp() as server:
            yield server.url("held"), server.url("still")
    else:
        with pyav_ingest(folder) as ingest:
            yield ingest.url(), None


async def holding(runs: int, hold_seconds: float, codec: str) -> None:
    relay_cpu, ffmpeg_cpu = [], []
    folder = Path(tempfile.mkdtemp())
    picture = folder / "brb.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0x202020:s=1280x720", "-frames:v", "1",
                    "-y", str(picture)], check=True)  # fmt: skip
    publish = ffmpeg_publish if codec == "avc" else hevc_publish
    for _ in range(runs):
        with ingest_for(codec, folder) as (ingest_url, still_url):
            relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0"}), [ingest_url],
                          slate_dir=Path(tempfile.mkdtemp()))  # fmt: skip
            await relay.start()
            try:
                encoder = await asyncio.create_subprocess_exec(
                    *publish(f"rtmp://127.0.0.1:{relay.port}/live/x", 60), stdout=asyncio.subprocess.DEVNULL
                )
                slates = relay.protection.slates
                assert slates is not None
                while slates.loaded == 0 or relay.ingress.video_pictures_total < 90:  # noqa: ASYNC110 - polling a bench
                    await asyncio.sleep(0.1)
                encoder.kill()
                await encoder.wait()
                while not relay.holding:  # noqa: ASYNC110 - timing the hold's start
                    await asyncio.sleep(0.01)
                hold = relay.protection.hold
                assert hold is not None and hold.player.slate.shape.video.codec == codec
                cpu_before = time.process_time()
                await asyncio.sleep(hold_seconds)
                relay_cpu.append((time.process_time() - cpu_before) / hold_seconds * 100)
                assert relay.holding
            finally:
                await relay.close()
            still = subprocess.Popen(still_picture(picture, still_url, hold_seconds, codec))
            _, _, usage = await asyncio.to_thread(os.wait4, still.pid, 0)  # that one process's CPU
            still.returncode = 0
            ffmpeg_cpu.append((usage.ru_utime + usage.ru_stime) / hold_seconds * 100)
    name = "H.264" if codec == "avc" else "HEVC"
    print(
        f"holding with the {name} 720p30 slate: the relay's CPU {spread(relay_cpu, '% of a core')} "
        f"over {hold_seconds:g} s"
    )
    print(
        f"ffmpeg sending a still picture and silence instead ({'libx264' if codec == 'avc' else 'libx265'}"
        f"{'' if codec == 'avc' else ', to -f null'}): {spread(ffmpeg_cpu, '% of a core')}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hold-seconds", type=float, default=15.0)
    parser.add_argument("--making-only", action="store_true", help="skip the holding part (it needs nginx-rtmp)")
    args = parser.parse_args()
    await making(args.runs)
    if not args.making_only:
        await holding(args.runs, args.hold_seconds, "avc")
        await holding(args.runs, args.hold_seconds, "hevc")


if __name__ == "__main__":
    asyncio.run(main())

"""Disconnect protection for HEVC end to end: an encoder publishing HEVC over enhanced RTMP (as OBS 29.1+ does
with NVENC/AMF/QSV HEVC; here PyAV's libx265, B-frames on) is killed with -9 mid-stream, the relay holds the
broadcast with an x265 slate, a second encoder comes back, and the ingest gets one session that decodes.

The ingest is FFmpeg's own RTMP server (tests/peers/pyav_ingest.py), not nginx-rtmp: Debian's
libnginx-mod-rtmp reads an enhanced-RTMP video header's upper nibble as the frame type (9 for a keyframe),
so its recorder, which waits for a keyframe, records no HEVC video at all (a 4 s hvc1 stream gave a file
with its audio only). FFmpeg reads enhanced RTMP, takes one publisher per listen, and its recording is
decoded by FFmpeg 8 (tests/peers/pyav_check.py), as `ffmpeg -v error -i FILE -f null -` would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.relay.relay import Relay
from tests.agent.relay.helpers import running_relay, until
from tests.peers.pyav_ingest import pyav_ingest

av = pytest.importorskip("av", reason="needs PyAV (uv sync)")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif("libx265" not in av.codecs_available, reason="PyAV's FFmpeg has no libx265"),
]


async def start_publisher(url: str, seconds: float, ten_bit: bool) -> asyncio.subprocess.Process:
    command = [sys.executable, "-m", "tests.peers.hevc_publisher", url, str(seconds)]
    return await asyncio.create_subprocess_exec(
        *command, *(["--ten-bit"] if ten_bit else []), stdout=asyncio.subprocess.DEVNULL
    )


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


def slate_ready(relay: Relay) -> bool:
    slates = relay.protection.slates
    return slates is not None and slates.loaded > 0


@pytest.mark.parametrize("ten_bit", [False, True], ids=["main", "main10"])
async def test_an_hevc_encoder_killed_mid_stream_is_held_with_an_hevc_slate_and_its_return_continues_one_session(
    ten_bit: bool, tmp_path: Path
) -> None:
    with pyav_ingest(tmp_path) as ingest:
        async with running_relay(ingest.url(), hold_s=120) as relay:
            url = f"rtmp://127.0.0.1:{relay.port}/live/whatever"
            first = await start_publisher(url, 60, ten_bit)
            try:
                await until(lambda: relay.ingress.video_pictures_total >= 150, 30, "5 s of the first encoder")
                await until(lambda: slate_ready(relay), 30, "the HEVC slate made")
                killed_at = time.monotonic()
                first.kill()
                await until(lambda: relay.holding, 5, "the relay to hold")
                held_after_s = time.monotonic() - killed_at
            finally:
                await stop(first)
            hold = relay.protection.hold
            assert hold is not None and hold.player.slate.shape.video.codec == "hevc"
            assert hold.player.slate.shape.video.profile == ("main10" if ten_bit else "main")
            await asyncio.sleep(15)
            assert relay.holding and relay.destinations[0].connects_total == 1
            second = await start_publisher(url, 5, ten_bit)
            try:
                await until(lambda: not relay.holding, 20, "the second encoder on the air")
                assert await asyncio.wait_for(second.wait(), 40) == 0
            finally:
                await stop(second)
            await until(lambda: relay.destinations[0].state == "idle", 15, "the relay to end the stream")
        ingest_said = await asyncio.to_thread(ingest.wait, 30)
    assert held_after_s < 1.0
    assert 14 < relay.protection.held_total_s() < 22
    assert relay.destinations[0].connects_total == 1  # one session at the ingest, across the crash
    checked = subprocess.run(
        [sys.executable, "-m", "tests.peers.pyav_check", str(ingest.recording)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr[-2000:] + ingest_said
    report = json.loads(checked.stdout)
    assert report["errors"] == [], report["errors"][:20]
    assert report["video"]["codec"] == "hevc"
    assert report["video"]["pix_fmt"] == ("yuv420p10le" if ten_bit else "yuv420p")
    dts = [dts for dts, _ in report["video_packets"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(dts)]
    assert min(gaps) >= 0, "timestamps went back"
    assert max(gaps) <= 1.5, f"a video gap of {max(gaps):.2f} s"
    # One session: the first encoder, the slate, the second, all decoded.
    assert dts[-1] - dts[0] > 5 + 15 + 4
    assert report["frames"]["video"] >= 0.9 * 30 * (dts[-1] - dts[0])

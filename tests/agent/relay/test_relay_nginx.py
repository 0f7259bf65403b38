"""ffmpeg publishes to the relay, a real nginx-rtmp is the ingest: every frame arrives and the recording decodes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.relay.frames import FrameKind
from agent.rtmp import flv
from tests.agent.relay.helpers import running_relay, until
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]


@pytest.fixture
def recording_ingest(tmp_path: Path) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    record_dir = tmp_path / "rec"
    record_dir.mkdir()
    with nginx_rtmp(record_dir=record_dir) as server:
        yield server


def ffmpeg_test_pattern(url: str, seconds: float, *, size: str = "640x360", bitrate: str = "1500k") -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-b:v", bitrate,
        "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", url,
    ]  # fmt: skip


def video_pictures(path: Path) -> int:
    tags = flv.read_flv(path.read_bytes())
    return sum(1 for tag in tags if tag.tag_type == flv.TAG_VIDEO and flv.video_info(tag.data).picture)


async def run_ffmpeg(command: list[str], timeout_s: float) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")


async def test_ffmpeg_through_the_relay_to_nginx_rtmp_arrives_whole_and_decodes(recording_ingest: NginxRtmp) -> None:
    async with running_relay(recording_ingest.url("relayed")) as relay:
        await run_ffmpeg(ffmpeg_test_pattern(f"rtmp://127.0.0.1:{relay.port}/live/whatever", 3), 60)
        destination = relay.destinations[0]
        await until(lambda: destination.state == "idle" and not relay.ingress.publishing, 15, "the relay to finish")
    recorded = recorded_file(recording_ingest, "relayed")
    pictures = relay.ingress.video_pictures_total
    assert pictures >= 80  # 3 s at 30 fps
    # nginx writes the file as it gets the stream and closes it shortly after the unpublish.
    await until(lambda: recorded.exists() and video_pictures(recorded) >= pictures, 10, "nginx to record every picture")
    assert video_pictures(recorded) == pictures
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(recorded), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr
    assert destination.queue.dropped_total == 0
    assert relay.ingress.frames_total[FrameKind.VIDEO_KEY] >= 3
    assert relay.ingress.keyframe_interval_s == pytest.approx(1.0, abs=0.05)
    assert destination.frames_out_total == sum(relay.ingress.frames_total.values())


def recorded_file(server: NginxRtmp, key: str) -> Path:
    """nginx writes <record_path>/<key>.flv; the path is in the config the peer wrote."""
    config = (server.workdir / "nginx.conf").read_text()
    return Path(config.split("record_path ", 1)[1].split(";", 1)[0]) / f"{key}.flv"

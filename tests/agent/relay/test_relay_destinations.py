"""Several destinations with real peers: the same stream to a loopback nginx-rtmp and to one behind a link
shaped (tc tbf) to a third of the bitrate. The slow one drops to keep up; the other gets every frame, on time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.relay.frames import FrameKind
from agent.relay.queue import DropReason
from tests.agent.relay.failover_peers import decode_errors, ffmpeg_publishing, relay_with_backups
from tests.agent.relay.helpers import until
from tests.agent.relay.test_relay_nginx import video_pictures
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]

SECONDS = 8


@pytest.fixture
def near(tmp_path: Path) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    (tmp_path / "near").mkdir()
    with nginx_rtmp(record_dir=tmp_path / "near") as server:
        yield server


@pytest.fixture
def far(netns_host: NetnsHost, tmp_path: Path) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    (tmp_path / "far").mkdir()
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args(), record_dir=tmp_path / "far") as server:
        yield server


async def test_a_slow_destination_never_delays_or_drops_frames_for_another(
    netns_host: NetnsHost, near: NginxRtmp, far: NginxRtmp, tmp_path: Path
) -> None:
    netns_host.shape_upload(500)  # a third of the 1.5 Mbit/s stream
    async with (
        relay_with_backups([near.url("multi")], destinations=[far.url("multi")], finish_timeout_s=2) as relay,
        ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", SECONDS) as ffmpeg,
    ):
        good, slow = relay.destinations
        assert (good.name, slow.name) == (f"127.0.0.1:{near.port}", f"{netns_host.address}:{far.port}")
        assert await ffmpeg.process.wait() == 0
        await until(lambda: good.state == "idle" and slow.state == "idle", 20, "both destinations to finish")
    # The slow one fell behind and dropped inter frames to stay live...
    assert slow.queue.dropped[DropReason.UNTIL_KEYFRAME] > 0
    assert slow.queue.peak_ms > 900
    # ...while the near one got every frame, each within a few ms of its arrival from ffmpeg.
    assert good.queue.dropped_total == 0
    assert good.queue.peak_ms < 500
    latencies_ms = sorted(value * 1000 for value in good.latencies_s)
    assert latencies_ms[int(len(latencies_ms) * 0.99)] < 200, latencies_ms[-20:]
    near_file = tmp_path / "near" / "multi.flv"
    pictures = relay.ingress.video_pictures_total
    assert pictures >= SECONDS * 30 * 0.9
    await until(lambda: near_file.exists() and video_pictures(near_file) >= pictures, 10, "the near recording")
    assert video_pictures(near_file) == pictures
    assert relay.ingress.frames_total[FrameKind.VIDEO_KEY] >= SECONDS
    assert decode_errors(near_file) == ""
    assert decode_errors(tmp_path / "far" / "multi.flv") == ""
    assert ffmpeg.stderr == b"" and ffmpeg.longest_progress_gap_s < 2.0

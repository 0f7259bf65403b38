"""The drop policy on a real congested uplink: ffmpeg publishes 2.5 Mbit/s to the relay, whose path to
nginx-rtmp (in a network namespace) is shaped with tc tbf to 1.2 Mbit/s."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.relay.frames import FrameKind
from agent.relay.queue import DropReason
from agent.relay.source import RelaySource
from agent.rtmp import flv
from agent.runtime import Agent
from tests.agent.helpers import make_settings
from tests.agent.relay.helpers import until
from tests.agent.relay.test_relay_nginx import ffmpeg_test_pattern, recorded_file, run_ffmpeg
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import free_port

pytestmark = [pytest.mark.integration, pytest.mark.root]

LINK_KBIT = 1200
SECONDS = 8


@pytest.fixture
def ingest_in_namespace(netns_host: NetnsHost, tmp_path: Path) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (apt install ffmpeg)")
    record_dir = tmp_path / "rec"
    record_dir.mkdir()
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args(), record_dir=record_dir) as server:
        yield server


async def test_relay_drops_inter_frames_on_a_slow_uplink_and_the_ingest_stream_still_decodes(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, tmp_path: Path
) -> None:
    netns_host.shape_upload(LINK_KBIT)
    port = free_port()
    settings = make_settings(
        tmp_path,
        ingest__primary=ingest_in_namespace.url("congested"),
        relay__listen=f"127.0.0.1:{port}",
        relay__finish_timeout_s="3",
        sampling__interval_s="0.5",
        sources__system__enabled="false",
        sources__network__enabled="false",
        sources__obs__enabled="false",
        sources__ffmpeg__enabled="false",
        sources__uplink__enabled="false",
    )
    agent = Agent(settings)
    alerts_seen: set[tuple[str, str]] = set()

    async def watch_alerts() -> None:
        while True:
            alerts_seen.update((alert.id, alert.severity) for alert in agent.snapshot.alerts)
            await asyncio.sleep(0.1)

    await agent.start()
    watcher = asyncio.create_task(watch_alerts())
    try:
        (source,) = [s for s in agent.sources if isinstance(s, RelaySource)]
        relay = source.relay
        await until(lambda: relay.listening, 10, "the relay to listen")
        command = ffmpeg_test_pattern(f"rtmp://127.0.0.1:{port}/live/k", SECONDS, bitrate="2500k")
        await run_ffmpeg(command, 60)
        destination = relay.destinations[0]
        await until(lambda: destination.state == "idle", 15, "the relay to finish the stream")
    finally:
        watcher.cancel()
        await agent.stop()
    # The early warning and the critical alert both fired.
    assert ("relay_queue_growing", "warning") in alerts_seen
    assert ("relay_dropping", "critical") in alerts_seen
    queue = destination.queue
    ingress = relay.ingress
    # The queue grew past the first threshold, and the relay dropped inter frames, never more.
    assert queue.peak_ms > 900
    assert queue.dropped[DropReason.UNTIL_KEYFRAME] > 0
    assert queue.dropped[DropReason.QUEUE_FULL] == 0
    # Memory stayed bounded: about a second of media above the threshold, not the whole backlog.
    assert queue.peak_ms < 900 + 1500
    assert queue.peak_bytes < 2_500_000 // 8 * 3
    # At the ingest: every audio frame and every keyframe the encoder sent, and a stream that decodes.
    recorded = recorded_file(ingest_in_namespace, "congested")
    await until(lambda: recorded.exists(), 10, "nginx's recording")
    tags = flv.read_flv(recorded.read_bytes())
    audio = [t for t in tags if t.tag_type == flv.TAG_AUDIO and not flv.is_aac_sequence_header(t.data)]
    keyframes = [t for t in tags if t.tag_type == flv.TAG_VIDEO and flv.is_keyframe(t.data)]
    pictures = [t for t in tags if t.tag_type == flv.TAG_VIDEO and flv.video_info(t.data).picture]
    assert len(audio) == ingress.frames_total[FrameKind.AUDIO]
    assert len(keyframes) == ingress.frames_total[FrameKind.VIDEO_KEY]
    assert len(pictures) == ingress.video_pictures_total - queue.dropped_total
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(recorded), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr

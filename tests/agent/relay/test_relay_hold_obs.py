"""A real OBS Studio (its default x264 settings: High profile, B-frames) killed with -9 mid-stream through the
relay to nginx-rtmp, and started again 15 s later: nginx records one session across the crash, decodable."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time

import pytest

from tests.agent.relay.helpers import running_relay, until
from tests.agent.relay.test_relay_hold import slate_ready, video_packets
from tests.agent.relay.test_relay_nginx import recorded_file, recording_ingest
from tests.peers import obs_studio as obs_peer
from tests.peers.nginx_rtmp import NginxRtmp

__all__ = ["recording_ingest"]

pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def _obs_here() -> None:
    available, reason = obs_peer.obs_available()
    if not available:
        pytest.skip(reason)


async def test_obs_killed_mid_stream_and_started_again_15_s_later_is_one_decodable_nginx_session(
    recording_ingest: NginxRtmp,
) -> None:
    async with running_relay(recording_ingest.url("obs"), hold_s=120) as relay:
        server = f"rtmp://127.0.0.1:{relay.port}/live"
        with obs_peer.obs_studio(server, start_streaming=True) as first:
            await until(lambda: relay.ingress.video_pictures_total >= 240, 90, "8 s of OBS through the relay")
            await until(lambda: slate_ready(relay), 20, "the slate made")
            killed_at = time.monotonic()
            os.kill(first.process.pid, signal.SIGKILL)
            await until(lambda: relay.holding, 5, "the relay to hold")
            held_after_s = time.monotonic() - killed_at
            first.process.wait(10)
        await asyncio.sleep(max(0.0, killed_at + 15 - time.monotonic()))
        with obs_peer.obs_studio(server, start_streaming=True) as second:
            await until(lambda: not relay.holding, 90, "the second OBS on the air")
            back_at = relay.ingress.video_pictures_total
            await until(lambda: relay.ingress.video_pictures_total >= back_at + 180, 60, "6 s of the second OBS")
            client = await obs_peer.connect(second)
            try:
                await client.request("StopStream")  # a clean stop: the broadcast ends at once
            finally:
                await client.close()
            await until(lambda: relay.destinations[0].state == "idle", 20, "the relay to end the stream")
    assert held_after_s < 1.0
    assert relay.protection.held_total_s() > 15
    assert relay.destinations[0].connects_total == 1
    assert recording_ingest.error_log.count("publish: name='obs'") == 1
    recorded = recorded_file(recording_ingest, "obs")
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(recorded), "-f", "null", "-"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr[-3000:]
    dts = [d for d, _ in video_packets(recorded)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(dts)]
    assert min(gaps) >= 0, "timestamps went back"
    assert max(gaps) <= 1.5, f"a video gap of {max(gaps):.2f} s"
    assert dts[-1] - dts[0] > 8 + 15 + 6

"""The real-OBS peer: it starts, streams what its generated config says, and leaves nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.obs_studio import ObsStudio, connect, obs_available, obs_studio
from tests.peers.wait import async_wait_until

pytestmark = pytest.mark.integration


async def test_obs_streams_to_the_configured_ingest_and_is_stopped_afterwards(
    start_obs: Callable[..., ObsStudio], nginx_ingest: NginxRtmp
) -> None:
    obs = start_obs(f"rtmp://127.0.0.1:{nginx_ingest.port}/live", video_kbps=1000, audio_kbps=128)
    client = await connect(obs)
    try:
        service = await client.request("GetStreamServiceSettings")
        assert service["streamServiceSettings"]["server"] == f"rtmp://127.0.0.1:{nginx_ingest.port}/live"
        scenes = {scene["sceneName"] for scene in (await client.request("GetSceneList"))["scenes"]}
        assert scenes == {"Main", "BRB"}
        await client.request("StartStream")

        async def sent_bytes() -> int:
            return int((await client.request("GetStreamStatus"))["outputBytes"])

        await async_wait_until(lambda: sent_bytes(), 20, "OBS to start sending")
        start, first = asyncio.get_running_loop().time(), await sent_bytes()
        await async_wait_until(lambda: asyncio.get_running_loop().time() - start > 3, 5, "3 s of streaming")
        rate_kbps = (await sent_bytes() - first) * 8 / 1000 / (asyncio.get_running_loop().time() - start)
        assert 700 <= rate_kbps <= 1600, f"OBS sent {rate_kbps:.0f} kbit/s for 1000 + 128 configured"
    finally:
        await client.close()


def test_obs_and_xvfb_are_stopped_and_the_home_removed_even_when_the_test_fails() -> None:
    available, reason = obs_available()
    if not available:
        pytest.skip(reason)
    with pytest.raises(RuntimeError, match="the test failed"), obs_studio("rtmp://127.0.0.1:9/live") as obs:
        assert obs.process.poll() is None and obs.xvfb.poll() is None
        raise RuntimeError("the test failed")
    assert obs.process.poll() is not None and obs.xvfb.poll() is not None
    assert not obs.home.exists()

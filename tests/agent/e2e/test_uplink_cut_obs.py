"""End to end with a real OBS Studio under Xvfb streaming 2500 kbit/s (keyframe every 2 s) to nginx-rtmp in a
network namespace; the path is cut to 1.2 Mbit/s with tc tbf. The agent finds OBS's connection from the
server in OBS's stream settings and reads it from the kernel: the warning must come soon after the cut
and no later than about OBS's first dropped frame (outputSkippedFrames), with a video bitrate the link can
carry; it clears after the recovery. Exact figures over several runs: bench/uplink_cut.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.obs.client import ObsClient
from agent.server import AgentServer
from agent.settings import load_settings
from tests.agent.e2e.uplink_cut import run_cut
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.obs_studio import ObsStudio, connect
from tests.peers.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]


def obs_agent_config(tmp_path: Path, obs: ObsStudio, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[api]
port = 0
[logs]
enabled = false
[sources.system]
enabled = false
[sources.network]
enabled = false
[sources.ffmpeg]
enabled = false
[sources.obs]
url = "{obs.websocket_url}"
password = "{obs.password}"
[sources.uplink]
discover_interval_s = 0.5
# Other encoders may run on this machine (other tests): only the configured destination counts.
find_encoder_processes = false
{extra}
"""
    )
    return config


async def start_streaming(obs: ObsStudio) -> ObsClient:
    client = await connect(obs)
    await client.request("StartStream")

    async def sending() -> bool:
        return int((await client.request("GetStreamStatus")).get("outputBytes", 0)) > 100_000

    await async_wait_until(sending, 30, "OBS to stream")
    return client


async def test_obs_cut_to_1200_kbit_warns_before_or_near_the_first_dropped_frame(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, start_obs: Callable[..., ObsStudio], tmp_path: Path
) -> None:
    obs = start_obs(f"rtmp://{netns_host.address}:{ingest_in_namespace.port}/live", video_kbps=2500, keyint_s=2)
    client = await start_streaming(obs)

    async def dropped() -> int | None:
        return int((await client.request("GetStreamStatus"))["outputSkippedFrames"])

    server = AgentServer(load_settings(obs_agent_config(tmp_path, obs), environ={}))
    await server.start()
    try:
        figures = await run_cut(server.agent, netns_host, healthy_s=5, cut_s=8, dropped_frames=dropped)
    finally:
        await server.stop()
        await client.close()
    print(figures.line())
    assert figures.found_by == "obs"
    assert figures.false_alerts_before_cut == 0, "warned on a healthy stream"
    assert figures.alert_after_s is not None and figures.alert_after_s <= 3.0, figures.line()
    if figures.first_drop_after_s is not None:
        assert figures.alert_after_s <= figures.first_drop_after_s + 1.0, figures.line()
    assert figures.suggestions_kbps and all(600 <= kbps <= 1000 for kbps in figures.suggestions_kbps), figures.line()
    assert len(set(figures.suggestions_kbps)) <= 2, f"the suggestion swung: {figures.line()}"
    assert figures.cleared_after_s is not None and figures.cleared_after_s <= 10.0, figures.line()

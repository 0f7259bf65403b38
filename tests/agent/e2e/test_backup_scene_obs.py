"""The automatic backup scene against a real OBS Studio under Xvfb: OBS streams 2500 kbit/s to nginx-rtmp in
a network namespace; the path is cut to 600 kbit/s (OBS then drops most of its frames while its congestion
figure swings between 0 and 1). The agent must put the "BRB" scene on air within 10 s of the cut, never
on the healthy stream before, and put "Main" back within 20 s of the recovery.

Measured over 4 runs on the loaded machine: BRB 5.9-6.3 s after the cut, Main back 13.7-15.5 s after the
recovery (min_hold_s 10 here; the default 30 s would hold the backup scene longer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.obs.client import ObsClient
from agent.server import AgentServer
from agent.settings import load_settings
from tests.agent.e2e.test_uplink_cut_obs import obs_agent_config, start_streaming
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.obs_studio import ObsStudio
from tests.peers.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]

BACKUP = """
[sources.obs.backup_scene]
enabled = true
scene = "BRB"
min_hold_s = 10
"""


async def program_scene(client: ObsClient) -> str:
    return str((await client.request("GetCurrentProgramScene"))["currentProgramSceneName"])


async def scene_within(client: ObsClient, scene: str, seconds: float) -> float | None:
    """Seconds until `scene` is on air, polled every 0.25 s; None if it never was within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await program_scene(client) == scene:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def test_backup_scene_switches_on_a_real_cut_and_back_after_recovery_never_on_a_healthy_stream(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, start_obs: Callable[..., ObsStudio], tmp_path: Path
) -> None:
    obs = start_obs(f"rtmp://{netns_host.address}:{ingest_in_namespace.port}/live", video_kbps=2500, keyint_s=2)
    client = await start_streaming(obs)
    server = AgentServer(load_settings(obs_agent_config(tmp_path, obs, BACKUP), environ={}))
    await server.start()
    try:
        # Healthy: the agent reads OBS and the uplink, and never switches.
        assert await scene_within(client, "BRB", 12.0) is None, "switched on a healthy stream"
        snapshot = server.agent.snapshot
        assert snapshot.uplink is not None and snapshot.uplink.state == "ok", snapshot.uplink
        netns_host.shape_upload(600)
        switched_after = await scene_within(client, "BRB", 15.0)
        assert switched_after is not None and switched_after <= 10.0, f"switched after {switched_after} s"
        await asyncio.sleep(max(0.0, 12.0 - switched_after))  # the cut lasts 12 s in all
        netns_host.unshape()
        back_after = await scene_within(client, "Main", 30.0)
        assert back_after is not None and back_after <= 20.0, f"back after {back_after} s"
        await async_wait_until(
            lambda: (sample := server.agent.snapshot.obs) is not None and not sample.backup_scene_active,
            5,
            "the agent's snapshot to say the backup scene is off",
        )
        print(f"backup scene: switched {switched_after:.1f} s after the cut, back {back_after:.1f} s after recovery")
    finally:
        await server.stop()
        await client.close()

"""`streamhealth relay point-obs`: OBS's server and key become the relay's ingest, OBS streams through the relay.

The end-to-end test drives a real OBS Studio under Xvfb (tests/peers/obs_studio.py); the recorded
obs-websocket peer cannot stand in, because it does not change its answers after SetStreamServiceSettings.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agent import paths
from agent.configuration import load_configuration
from agent.relay.point_obs import PointObsError, ingest_url_from_service, point_obs_at_relay, undo_point_obs
from agent.relay.relay import Relay
from tests.agent.relay.helpers import until
from tests.peers import obs_studio as obs_peer
from tests.peers.nginx_rtmp import nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import free_port


def service(server: str, key: str = "live_123_secret", **extra: Any) -> dict[str, Any]:
    return {"streamServiceType": "rtmp_common", "streamServiceSettings": {"server": server, "key": key, **extra}}


def test_the_ingest_is_obs_server_plus_key() -> None:
    assert ingest_url_from_service(service("rtmp://live.twitch.tv/app/")) == "rtmp://live.twitch.tv/app/live_123_secret"


@pytest.mark.parametrize(
    ("svc", "why"),
    [
        (service("auto"), "not an rtmp:// or rtmps:// address"),
        (service("rtmp://x/app", key=""), "no stream key"),
        (service("rtmp://x/app", use_auth=True), "username and password"),
    ],
)
def test_obs_settings_the_relay_cannot_use_are_refused_with_what_to_do(svc: dict[str, Any], why: str) -> None:
    with pytest.raises(PointObsError, match=why):
        ingest_url_from_service(svc)


def test_the_saved_ingest_is_a_settings_layer_below_the_users_file(tmp_path: Path) -> None:
    layer = paths.relay_ingest_file()
    layer.parent.mkdir(parents=True, exist_ok=True)
    layer.write_text('[ingest]\nprimary = "rtmp://saved.example/app/savedkey"\n')
    assert load_configuration(None, environ={}).ingest.primary == "rtmp://saved.example/app/savedkey"
    user = tmp_path / "config.toml"
    user.write_text('[ingest]\nprimary = "rtmp://mine.example/app/minekey"\n')
    assert load_configuration(user, environ={}).ingest.primary == "rtmp://mine.example/app/minekey"


async def _until_obs_stopped(client: Any, timeout_s: float = 30) -> None:
    """OBS keeps its output active a moment after StopStream while it flushes: wait for OBS's own word."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (await client.request("GetStreamStatus")).get("outputActive"):
        assert loop.time() < deadline, "OBS did not stop its stream output"
        await asyncio.sleep(0.2)


@pytest.mark.integration
async def test_obs_pointed_at_the_relay_streams_through_it_and_undo_puts_it_back() -> None:
    available, reason = obs_peer.obs_available()
    if not available:
        pytest.skip(reason)
    nginx_ok, nginx_reason = nginx_rtmp_available()
    if not nginx_ok:
        pytest.skip(nginx_reason)
    relay_port = free_port()
    with nginx_rtmp() as ingest, obs_peer.obs_studio(f"rtmp://127.0.0.1:{ingest.port}/live", "obs-secret-key") as obs:
        client = await obs_peer.connect(obs)
        try:
            settings = load_configuration(None, environ={"STREAMHEALTH_RELAY__LISTEN": f"127.0.0.1:{relay_port}"})
            result = await point_obs_at_relay(client, settings)
            assert result.changed and "obs-secret-key" not in result.message
            pointed = (await client.request("GetStreamServiceSettings"))["streamServiceSettings"]
            assert pointed["server"] == f"rtmp://127.0.0.1:{relay_port}/live"
            for saved in (paths.relay_ingest_file(), paths.obs_original_service_file()):
                assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
            # The agent started now forwards to OBS's original server and key.
            settings = load_configuration(None, environ={"STREAMHEALTH_RELAY__LISTEN": f"127.0.0.1:{relay_port}"})
            assert settings.ingest.primary == f"rtmp://127.0.0.1:{ingest.port}/live/obs-secret-key"
            relay = Relay(settings.relay, [settings.ingest.primary])
            await relay.start()
            try:
                await client.request("StartStream")
                destination = relay.destinations[0]
                await until(lambda: destination.frames_out_total > 60, 60, "OBS's frames through the relay")
                with pytest.raises(PointObsError, match="OBS is streaming"):
                    await point_obs_at_relay(client, settings)
                assert relay.ingress.encoder is not None and relay.ingress.video_codec == "avc"
                assert destination.queue.dropped_total == 0
                await client.request("StopStream")
                await until(lambda: not relay.ingress.publishing, 30, "OBS to stop")
            finally:
                await relay.close()
            await _until_obs_stopped(client)
            undone = await undo_point_obs(client)
            assert undone.changed
            back = (await client.request("GetStreamServiceSettings"))["streamServiceSettings"]
            assert back["server"] == f"rtmp://127.0.0.1:{ingest.port}/live" and back["key"] == "obs-secret-key"
            assert not paths.relay_ingest_file().exists()
        finally:
            await client.close()

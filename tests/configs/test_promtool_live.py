"""`promtool check metrics` on both expositions while a real stream runs: ffmpeg publishes to the agent's relay,
the relay forwards to nginx-rtmp, the uplink source reads the relay's ingest connection, and the agent's own
shipper sends its log to a collector. Both /metrics then carry the live stream's relay and uplink series, and
promtool must find nothing to say about either (it refuses bits, for one: base units are bytes)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import cast

import httpx
import pytest

from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.agent.relay.test_relay_nginx import ffmpeg_test_pattern
from tests.collector.helpers import running_collector
from tests.peers.nginx_rtmp import nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import async_wait_until, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (apt install prometheus)"),
    pytest.mark.skipif(not nginx_rtmp_available()[0], reason=nginx_rtmp_available()[1]),
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]

UPLINK_SERIES = "streamhealth_uplink_acked_bytes_per_second"
RELAY_SERIES = "streamhealth_relay_received_frames_total"


def promtool_check(exposition: str) -> str:
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )
    return "" if checked.returncode == 0 and not checked.stdout.strip() else checked.stdout + checked.stderr


async def test_promtool_is_clean_on_the_agents_and_the_collectors_metrics_during_a_relayed_stream(
    tmp_path: Path,
) -> None:
    relay_port = free_port()
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite3'}") as collector:
        with nginx_rtmp() as ingest:
            settings = make_settings(
                tmp_path,
                INGEST__PRIMARY=ingest.url("sk_live_promtool"),
                RELAY__LISTEN=f"127.0.0.1:{relay_port}",
                SAMPLING__INTERVAL_S="0.5",
                SOURCES__OBS__ENABLED="false",
                SOURCES__NETWORK__ENABLED="false",
                SHIP__URL=collector.url,
                SHIP__TOKEN=collector.agent_token,
                SHIP__AGENT_NAME="studio-pc",
                SHIP__BATCH_INTERVAL_S="0.5",
            )
            server = AgentServer(settings, Agent(settings))
            await server.start()
            encoder = await asyncio.create_subprocess_exec(
                *ffmpeg_test_pattern(f"rtmp://127.0.0.1:{relay_port}/live/anykey", 60),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                async with (
                    httpx.AsyncClient(base_url=server.url, timeout=10) as agent_http,
                    collector.reader() as fleet,
                ):

                    async def both_expositions() -> tuple[str, str] | None:
                        agent_text = (await agent_http.get("/metrics")).text
                        fleet_text = (await fleet.get("/metrics")).text
                        wanted = (UPLINK_SERIES, RELAY_SERIES)
                        if all(name in text for name in wanted for text in (agent_text, fleet_text)):
                            return agent_text, fleet_text
                        return None

                    found = await async_wait_until(
                        both_expositions, 45, "the relayed stream's uplink and relay series on both /metrics", 0.5
                    )
            finally:
                if encoder.returncode is None:
                    encoder.kill()
                await encoder.wait()
                await server.stop()
    agent_text, fleet_text = cast(tuple[str, str], found)
    assert 'agent="studio-pc"' in fleet_text  # the fleet view: the same names, one label more
    assert "sk_live_promtool" not in agent_text + fleet_text
    assert promtool_check(agent_text) == ""
    assert promtool_check(fleet_text) == ""

"""The relay inside the agent: listens when an ingest is configured, says so when its port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from agent.api.metrics import build_registry
from agent.errors import ConfigError
from agent.relay.source import relay_sources
from agent.rtmp.client import RtmpPublisher
from agent.runtime import Agent
from agent.sessions.live import live_origins
from agent.sources import build_sources
from tests.agent.helpers import make_settings
from tests.agent.relay.helpers import relay_only_agent, until
from tests.agent.rtmp.mini_ingest import mini_ingest
from tests.peers.wait import free_port


def test_no_relay_without_an_ingest_or_when_disabled(tmp_path: Path) -> None:
    assert relay_sources(make_settings(tmp_path)) == []
    disabled = make_settings(tmp_path, ingest__primary="rtmp://127.0.0.1/live/k", relay__enabled="false")
    assert relay_sources(disabled) == []
    enabled = make_settings(tmp_path, ingest__primary="rtmp://127.0.0.1/live/k")
    assert [s.name for s in relay_sources(enabled)] == ["relay"]
    assert "relay" not in {s.name for s in build_sources(enabled)}  # the relay registers itself, not here
    assert "relay" in {s.name for s in Agent(enabled).sources}


async def test_agent_relays_and_its_snapshot_shows_the_stream(tmp_path: Path) -> None:
    port = free_port()
    async with mini_ingest() as ingest:
        agent = relay_only_agent(
            tmp_path,
            ingest__primary=f"rtmp://127.0.0.1:{ingest.port}/live/sk_live_secret",
            relay__listen=f"127.0.0.1:{port}",
        )
        await agent.start()
        try:
            await until(lambda: agent.snapshot.relay is not None, 10, "a relay sample")
            async with RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/anykey") as encoder:
                for index in range(40):
                    await encoder.send_video(
                        index * 33, (b"\x17" if index % 20 == 0 else b"\x27") + b"\x01\x00\x00\x00" + bytes(3000)
                    )
                    await encoder.send_audio(index * 33, b"\xaf\x01" + bytes(200))
                await until(lambda: live_origins(agent.snapshot) == ["relay"], 10, "the stream to count as live")
                await until(
                    lambda: agent.snapshot.relay is not None and agent.snapshot.relay.frames_out_total >= 80,
                    10,
                    "the frames in the snapshot",
                )
            relay = agent.snapshot.relay
            assert relay is not None
            assert relay.frames_in_total == 80 and relay.frames_dropped_total == 0
            assert relay.destinations[0].name == f"127.0.0.1:{ingest.port}"
            assert "sk_live_secret" not in agent.snapshot.model_dump_json()
            assert "relay.queue_ms" in agent.history.metrics()
            text = generate_latest(build_registry(lambda: agent.snapshot)).decode()
            assert "streamhealth_relay_received_frames_total 80.0" in text
            assert 'streamhealth_relay_sent_frames_total{destination="0"} 80.0' in text
            assert 'streamhealth_relay_dropped_frames_total{destination="0",reason="until_keyframe"} 0.0' in text
            assert "streamhealth_relay_queue_seconds" in text and "streamhealth_relay_ingest_rtt_seconds" in text
            assert "sk_live_secret" not in text and "rtmp://" not in text and str(ingest.port) not in text
        finally:
            await agent.stop()


async def test_relay_port_taken_is_reported_and_the_agent_keeps_running(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        agent = relay_only_agent(
            tmp_path, ingest__primary="rtmp://127.0.0.1:1/live/k", relay__listen=f"127.0.0.1:{port}"
        )
        await agent.start()
        try:
            await until(lambda: agent.snapshot.sources.get("relay") is not None
                        and agent.snapshot.sources["relay"].state == "error", 10, "the relay's error")  # fmt: skip
            status = agent.snapshot.sources["relay"]
            assert status.error is not None and f"cannot listen on 127.0.0.1:{port}" in status.error
            assert "relay.listen" in status.error
            ticks = agent.ticks
            await until(lambda: agent.ticks >= ticks + 3, 10, "the agent to keep ticking")
        finally:
            await agent.stop()


async def test_each_destination_shows_apart_in_the_snapshot_and_metrics_without_keys(tmp_path: Path) -> None:
    port = free_port()
    async with mini_ingest() as first, mini_ingest() as second:
        agent = relay_only_agent(
            tmp_path,
            ingest__primary=f"rtmp://127.0.0.1:{first.port}/live/sk_live_first",
            relay__destinations=f'["rtmp://127.0.0.1:{second.port}/app/sk_live_second"]',
            relay__listen=f"127.0.0.1:{port}",
        )
        await agent.start()
        try:
            await until(lambda: agent.snapshot.relay is not None, 10, "a relay sample")
            async with RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/anykey") as encoder:
                for index in range(20):
                    await encoder.send_video(index * 33, (b"\x17" if index == 0 else b"\x27") + bytes(1000))

                def both_sent() -> bool:
                    relay = agent.snapshot.relay
                    return relay is not None and all(d.frames_out_total >= 20 for d in relay.destinations)

                await until(both_sent, 10, "both destinations to get the frames")
            relay = agent.snapshot.relay
            assert relay is not None
            assert [d.name for d in relay.destinations] == [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
            assert all(d.bytes_out_total >= 20 * 1001 for d in relay.destinations)
            served = agent.snapshot.model_dump_json()
            assert "sk_live_first" not in served and "sk_live_second" not in served
            text = generate_latest(build_registry(lambda: agent.snapshot)).decode()
            assert 'streamhealth_relay_sent_frames_total{destination="1"}' in text
            assert 'streamhealth_relay_ingest_failovers_total{destination="1"} 0.0' in text
            assert "sk_live" not in text and "rtmp://" not in text and str(second.port) not in text
        finally:
            await agent.stop()


def test_a_bad_listen_address_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"relay\.listen: .*HOST:PORT"):
        make_settings(tmp_path, relay__listen="1935")

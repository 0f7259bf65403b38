"""`relay point-obs` on an agent started with no ingest: it had no relay, so OBS pointed at the relay went
nowhere until the agent restarted (issue 21). Now the agent's stand-in (agent/relay/standby.py) listens on
nothing until the settings layer gives an ingest, then starts the relay without a restart."""

from __future__ import annotations

import socket
from pathlib import Path

from agent.relay.standby import StandbyRelaySource
from agent.rtmp.client import RtmpPublisher
from tests.agent.relay.helpers import relay_only_agent, until
from tests.agent.relay.test_ingest_layer import published, write_layer
from tests.agent.rtmp.mini_ingest import mini_ingest
from tests.peers.wait import free_port


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_an_agent_started_with_no_ingest_starts_its_relay_when_point_obs_gives_one(tmp_path: Path) -> None:
    port = free_port()
    async with mini_ingest() as ingest:
        agent = relay_only_agent(tmp_path, relay__listen=f"127.0.0.1:{port}")
        assert [type(s) for s in agent.sources if s.name == "relay"] == [StandbyRelaySource]
        await agent.start()
        try:
            await until(lambda: agent.snapshot.overall != "starting", 10, "the agent to have measured")
            assert not _listens(port)  # the port stays free for whoever else uses it while the relay is not
            assert agent.snapshot.relay is None and agent.snapshot.sources["relay"].state == "starting"
            assert not [a for a in agent.snapshot.alerts if a.id.startswith("relay")]

            write_layer(f"rtmp://127.0.0.1:{ingest.port}/live/sk_from_obs")  # what point-obs writes
            await until(lambda: _listens(port), 10, "the relay to listen without a restart")
            async with RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/anykey") as encoder:
                await encoder.send_video(0, b"\x17\x01\x00\x00\x00" + bytes(100))
                await until(lambda: published(ingest) == 1, 10, "the stream at the layer's ingest")
            await until(lambda: agent.snapshot.relay is not None, 10, "a relay sample")
            assert agent.snapshot.sources["relay"].state == "ok"
            assert "sk_from_obs" not in agent.snapshot.model_dump_json()
        finally:
            await agent.stop()
        assert not _listens(port)


def test_with_the_relay_disabled_nothing_stands_in(tmp_path: Path) -> None:
    assert "relay" not in {s.name for s in relay_only_agent(tmp_path, relay__enabled="false").sources}

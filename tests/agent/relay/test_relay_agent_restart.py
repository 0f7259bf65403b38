"""kill -9 of a real agent process while it relays ffmpeg's stream to nginx-rtmp: the encoder sees its
connection close (nothing can hide a dead relay), and a restarted agent takes the encoder's next publish."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.relay.failover_peers import decode_errors, first_picture_seen
from tests.agent.relay.helpers import until
from tests.agent.relay.test_relay_nginx import ffmpeg_test_pattern, run_ffmpeg, video_pictures
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import free_port, port_open, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    (tmp_path / "rec").mkdir()
    with nginx_rtmp(record_dir=tmp_path / "rec") as server:
        yield server


def _start_agent(tmp_path: Path, ingest_url: str, relay_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_API__PORT": "0",
        "STREAMHEALTH_SAMPLING__INTERVAL_S": "0.2",
        "STREAMHEALTH_SOURCES__SYSTEM__ENABLED": "false",
        "STREAMHEALTH_SOURCES__NETWORK__ENABLED": "false",
        "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
        "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
        "STREAMHEALTH_INGEST__PRIMARY": ingest_url,
        "STREAMHEALTH_RELAY__LISTEN": f"127.0.0.1:{relay_port}",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "agent", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_until(lambda: agent.poll() is not None or port_open("127.0.0.1", relay_port), 30, "the relay to listen")
    assert agent.poll() is None, agent.stderr.read() if agent.stderr else b""
    return agent


def _stop(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.kill()
    agent.communicate(timeout=10)


async def test_after_kill_9_the_encoder_sees_the_close_and_a_restarted_agent_takes_its_reconnect(
    ingest: NginxRtmp, tmp_path: Path
) -> None:
    relay_port = free_port()
    recorded = tmp_path / "rec" / "restart.flv"
    agent = _start_agent(tmp_path, ingest.url("restart"), relay_port)
    try:
        encoder = await asyncio.create_subprocess_exec(
            *ffmpeg_test_pattern(f"rtmp://127.0.0.1:{relay_port}/live/k", 60),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await until(lambda: first_picture_seen(recorded), 20, "the stream to reach nginx through the agent")
            agent.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            _, stderr = await asyncio.wait_for(encoder.communicate(), 20)
            noticed_s = time.monotonic() - killed_at
        finally:
            if encoder.returncode is None:
                encoder.kill()
                await encoder.wait()
        # The encoder saw its connection go (it would reconnect, as OBS does) instead of streaming into nothing.
        assert encoder.returncode != 0
        assert noticed_s < 10, noticed_s
        assert stderr, "ffmpeg said nothing about the lost connection"
        _stop(agent)
        recorded.unlink()  # nginx closed it when the dead agent's connection went: what comes now is new
        # A new agent on the same port takes the encoder's next publish and forwards it.
        agent = _start_agent(tmp_path, ingest.url("restart"), relay_port)
        await run_ffmpeg(ffmpeg_test_pattern(f"rtmp://127.0.0.1:{relay_port}/live/k", 3), 60)
        await until(lambda: recorded.exists() and video_pictures(recorded) >= 80, 15, "the second stream at nginx")
        assert decode_errors(recorded) == ""
    finally:
        _stop(agent)

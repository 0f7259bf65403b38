"""End to end: ffmpeg through `streamhealth run` streams 2500 kbit/s to nginx-rtmp in a network namespace;
the path is cut to 1.2 Mbit/s with tc tbf. The uplink source reads ffmpeg's own connection from the
kernel: the warning must come soon after the cut with a bitrate the link can carry, and clear after
the recovery. Exact figures over several runs: bench/uplink_cut.py (the margins here are wide: a loaded
2-core machine must never fail this)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.server import AgentServer
from agent.settings import load_settings
from tests.agent.e2e.uplink_cut import run_cut, uplink_alert
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]

VIDEO_KBPS, AUDIO_KBPS = 2500, 128


@pytest.fixture
def ingest_in_namespace(netns_host: NetnsHost) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (apt install ffmpeg)")
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as server:
        yield server


def ffmpeg_args(ingest_url: str) -> list[str]:
    """A live 2500 kbit/s CBR source with a keyframe every 2 s, small frames so the CPU is no excuse."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
        "-b:v", f"{VIDEO_KBPS}k", "-minrate", f"{VIDEO_KBPS}k", "-maxrate", f"{VIDEO_KBPS}k",
        "-bufsize", f"{VIDEO_KBPS}k", "-x264-params", "nal-hrd=cbr:force-cfr=1",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k",
        "-f", "flv", ingest_url,
    ]  # fmt: skip


def agent_config(tmp_path: Path, ingest_url: str) -> Path:
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
[sources.obs]
enabled = false
[sources.uplink]
discover_interval_s = 0.5
# Other encoders may run on this machine (other tests): only the configured destination counts.
find_encoder_processes = false
[ingest]
primary = "{ingest_url}"
[stream]
video_bitrate_kbps = {VIDEO_KBPS}
audio_bitrate_kbps = {AUDIO_KBPS}
"""
    )
    return config


@contextlib.asynccontextmanager
async def streamhealth_run(server: AgentServer, ingest_url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`streamhealth run -- ffmpeg ...` as a user runs it, relaying progress to the agent under test."""
    port = server.url.rsplit(":", 1)[1]
    env = {**os.environ, "STREAMHEALTH_API__PORT": port}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui.cli", "run", "--", *ffmpeg_args(ingest_url),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


async def test_ffmpeg_cut_to_1200_kbit_warns_quickly_with_a_bitrate_the_link_carries(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, tmp_path: Path
) -> None:
    ingest_url = ingest_in_namespace.url("e2e-secret-key")
    server = AgentServer(load_settings(agent_config(tmp_path, ingest_url), environ={}))
    await server.start()
    try:
        async with streamhealth_run(server, ingest_url):
            figures = await run_cut(server.agent, netns_host, healthy_s=5, cut_s=7)
    finally:
        await server.stop()
    print(figures.line())
    assert figures.found_by == "ingest"
    assert figures.false_alerts_before_cut == 0, "warned on a healthy stream"
    assert figures.alert_after_s is not None and figures.alert_after_s <= 3.0, figures.line()
    assert figures.suggestions_kbps and all(600 <= kbps <= 1000 for kbps in figures.suggestions_kbps), figures.line()
    assert len(set(figures.suggestions_kbps)) <= 2, f"the suggestion swung: {figures.line()}"
    assert figures.cleared_after_s is not None and figures.cleared_after_s <= 10.0, figures.line()
    assert figures.message is not None and "e2e-secret-key" not in figures.message


async def test_ffmpeg_on_a_tight_link_that_carries_it_never_warns(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, tmp_path: Path
) -> None:
    """3.3 Mbit/s for 2.5 + 0.13 Mbit/s (1.25x): keyframes queue for a moment, which must not flap the warning."""
    netns_host.shape_upload(3300)
    ingest_url = ingest_in_namespace.url("e2e-secret-key")
    server = AgentServer(load_settings(agent_config(tmp_path, ingest_url), environ={}))
    await server.start()
    readings = 0
    try:
        async with streamhealth_run(server, ingest_url):
            await async_wait_until(
                lambda: (u := server.agent.snapshot.uplink) is not None and u.state == "ok", 20, "the uplink"
            )
            loop = asyncio.get_running_loop()
            until = loop.time() + 12
            while loop.time() < until:
                uplink = server.agent.snapshot.uplink
                assert uplink is not None and not uplink.congested, uplink
                assert uplink_alert(server.agent) is None
                readings += 1
                await asyncio.sleep(0.25)
    finally:
        await server.stop()
    assert readings >= 40

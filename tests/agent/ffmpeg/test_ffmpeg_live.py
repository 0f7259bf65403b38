"""Live: the real ffmpeg publishing a test pattern to a real nginx-rtmp, its -progress going to a real agent
(HTTP on a real uvicorn, and a file); then the uplink shaped below the bitrate in a network namespace.

Short and low-resolution (640x360, ultrafast): CI has two shared cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.models import FfmpegSample
from agent.server import AgentServer
from agent.settings import load_settings
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp
from tests.peers.wait import async_wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]

BITRATE_KBIT = 1000


def _publish(progress: str, url: str, seconds: float, *output_options: str) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        "-progress", progress, "-stats_period", "1",
        "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-b:v", f"{BITRATE_KBIT}k", "-maxrate", f"{BITRATE_KBIT}k", "-bufsize", f"{BITRATE_KBIT}k", "-g", "30",
        *output_options, "-f", "flv", url,
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def _agent(tmp_path: Path, **env: str) -> AsyncIterator[AgentServer]:
    settings = load_settings(
        None,
        environ={
            "STREAMHEALTH_API__PORT": "0",
            "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
            "STREAMHEALTH_SOURCES__SYSTEM__ENABLED": "false",
            "STREAMHEALTH_SOURCES__FFMPEG__FILE_POLL_INTERVAL_S": "0.2",
            "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
            **env,
        },
    )
    server = AgentServer(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def _ffmpeg(command: list[str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(*command, stderr=stderr)
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def _health_ffmpeg(client: httpx.AsyncClient) -> FfmpegSample | None:
    response = await client.get("/api/v1/health")
    body = response.json()
    return FfmpegSample.model_validate(body["ffmpeg"]) if body.get("ffmpeg") else None


async def test_ffmpeg_publishing_to_nginx_reports_progress_to_the_agent_over_http(
    nginx_ingest: NginxRtmp, tmp_path: Path
) -> None:
    async with _agent(tmp_path) as server:
        progress_url = f"{server.url}/api/v1/ffmpeg/progress"
        command = _publish(progress_url, nginx_ingest.url("live-http-test"), seconds=4)
        async with (
            _ffmpeg(command, tmp_path / "ffmpeg.log") as process,
            httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=5) as client,
        ):
            await async_wait_until(lambda: _seen_frames(server, 30), 15, "ffmpeg's progress in the agent")
            assert await asyncio.wait_for(process.wait(), 20) == 0, (tmp_path / "ffmpeg.log").read_text()
            await async_wait_until(lambda: _ended(server), 5, "progress=end")
            sample = await _health_ffmpeg(client)
    assert sample is not None and sample.via == "http" and sample.ended
    assert sample.frame is not None and sample.frame >= 100
    assert sample.speed_ratio is not None and sample.speed_ratio > 0.5
    assert sample.bitrate_bps is not None and 0.2 * BITRATE_KBIT * 1000 < sample.bitrate_bps < 3 * BITRATE_KBIT * 1000
    assert "live-http-test" in nginx_ingest.error_log  # nginx saw the publish


async def test_ffmpeg_progress_file_is_followed_while_it_publishes(nginx_ingest: NginxRtmp, tmp_path: Path) -> None:
    progress_file = tmp_path / "progress.txt"
    async with _agent(tmp_path, STREAMHEALTH_SOURCES__FFMPEG__PROGRESS_FILE=str(progress_file)) as server:
        command = _publish(str(progress_file), nginx_ingest.url("live-file-test"), seconds=3)
        async with _ffmpeg(command, tmp_path / "ffmpeg.log") as process:
            await async_wait_until(lambda: _seen_frames(server, 30), 15, "progress from the file")
            assert not _ended(server)  # seen while ffmpeg was still running
            assert await asyncio.wait_for(process.wait(), 20) == 0, (tmp_path / "ffmpeg.log").read_text()
        await async_wait_until(lambda: _ended(server), 5, "progress=end from the file")
        sample = server.agent.tick().ffmpeg
    assert sample is not None and sample.via == "file" and sample.frame is not None and sample.frame >= 60


@pytest.mark.root
async def test_uplink_shaped_below_the_bitrate_shows_ffmpeg_falling_behind(
    netns_host: NetnsHost, tmp_path: Path
) -> None:
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as ingest:
        async with _agent(tmp_path) as server:
            # A small socket send buffer, as a streaming app keeps: the kernel would otherwise autotune it up
            # to tcp_wmem's maximum (4 MB), which hides a slow uplink for ~10 s at this bitrate.
            command = _publish(
                f"{server.url}/api/v1/ffmpeg/progress", ingest.url("shaped"), 40, "-send_buffer_size", "32768"
            )
            async with _ffmpeg(command, tmp_path / "ffmpeg.log"):
                # Unshaped first: the encoder keeps up.
                await async_wait_until(
                    lambda: (
                        (s := server.agent.tick().ffmpeg) is not None
                        and s.speed_ratio_10s is not None
                        and s.speed_ratio_10s >= 0.85
                    ),
                    15,
                    "ffmpeg keeping up before shaping",
                )
                netns_host.shape_upload(BITRATE_KBIT * 3 // 10)
                shaped_at = time.monotonic()
                await async_wait_until(lambda: _falling_behind(server), 10, "the agent to report ffmpeg falling behind")
                reported_after_s = time.monotonic() - shaped_at
    sample = server.agent.snapshot.ffmpeg
    assert sample is not None
    assert reported_after_s < 10
    assert (
        (sample.speed_ratio_10s or 1) < 0.8
        or (sample.drop_frames_total or 0) > 0
        or (server.agent.snapshot.sources["ffmpeg"].state == "stale")
    )


def _seen_frames(server: AgentServer, frames: int) -> bool:
    sample = server.agent.tick().ffmpeg
    return sample is not None and (sample.frame or 0) >= frames


def _ended(server: AgentServer) -> bool:
    sample = server.agent.tick().ffmpeg
    return sample is not None and sample.ended


def _falling_behind(server: AgentServer) -> bool:
    snapshot = server.agent.tick()
    sample = snapshot.ffmpeg
    if sample is None:
        return False
    stalled = snapshot.sources["ffmpeg"].state == "stale"
    slow = sample.speed_ratio_10s is not None and sample.speed_ratio_10s < 0.8
    return slow or stalled or (sample.drop_frames_total or 0) > 0

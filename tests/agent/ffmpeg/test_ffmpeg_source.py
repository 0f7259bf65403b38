"""The ffmpeg source in a real agent: progress from a growing file and from an HTTP upload, silence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.api.app import create_app
from agent.runtime import Agent
from agent.settings import Settings, load_settings
from tests.peers.wait import async_wait_until


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings(
        None,
        environ={
            "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
            "STREAMHEALTH_SOURCES__SYSTEM__ENABLED": "false",
            "STREAMHEALTH_SOURCES__FFMPEG__FILE_POLL_INTERVAL_S": "0.05",
            "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
            **env,
        },
    )


@pytest.fixture
async def started() -> AsyncIterator[Any]:
    agents: list[Agent] = []

    async def start(settings: Settings) -> Agent:
        agent = Agent(settings)
        await agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        async with asyncio.timeout(10):
            await agent.stop("test ended")


@pytest.fixture
def recorded_progress(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "ffmpeg-5.1" / "progress.txt").read_bytes()


async def test_progress_file_written_bit_by_bit_is_followed_to_the_end(
    tmp_path: Path, started: Any, recorded_progress: bytes
) -> None:
    progress_file = tmp_path / "progress.txt"
    agent = await started(_settings(tmp_path, STREAMHEALTH_SOURCES__FFMPEG__PROGRESS_FILE=str(progress_file)))
    await async_wait_until(
        lambda: "waiting for ffmpeg" in (agent.tick().sources["ffmpeg"].error or ""), 5, "the wait reported"
    )
    half = len(recorded_progress) // 2
    progress_file.write_bytes(recorded_progress[:half])
    await async_wait_until(lambda: (s := agent.tick().ffmpeg) is not None and s.frame, 5, "the first blocks")
    first = agent.tick().ffmpeg
    assert first is not None and not first.ended and first.via == "file"
    with progress_file.open("ab") as handle:
        handle.write(recorded_progress[half:])
    await async_wait_until(lambda: (s := agent.tick().ffmpeg) is not None and s.ended, 5, "progress=end")
    last = agent.tick().ffmpeg
    assert last is not None and last.frame == 180 and last.speed_ratio == 1.0
    assert agent.tick().sources["ffmpeg"].state == "ok"


async def test_progress_file_replaced_by_a_new_run_starts_over(
    tmp_path: Path, started: Any, recorded_progress: bytes
) -> None:
    progress_file = tmp_path / "progress.txt"
    progress_file.write_bytes(recorded_progress)
    agent = await started(_settings(tmp_path, STREAMHEALTH_SOURCES__FFMPEG__PROGRESS_FILE=str(progress_file)))
    await async_wait_until(lambda: (s := agent.tick().ffmpeg) is not None and s.ended, 5, "the first run")
    progress_file.unlink()
    progress_file.write_bytes(b"frame=5\nfps=25.0\ndrop_frames=0\nspeed=0.5x\nprogress=continue\n")
    await async_wait_until(lambda: (s := agent.tick().ffmpeg) is not None and s.frame == 5, 5, "the second run")


async def test_ffmpeg_posting_progress_to_the_api_lands_in_the_health_snapshot(
    tmp_path: Path, started: Any, recorded_progress: bytes
) -> None:
    agent = await started(_settings(tmp_path))
    app = create_app(agent)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(recorded_progress), 97):  # ffmpeg's chunks do not follow lines either
            yield recorded_progress[start : start + 97]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        response = await client.post("/api/v1/ffmpeg/progress", content=chunks())
        assert response.status_code == 200
        assert response.json() == {"blocks": recorded_progress.count(b"progress="), "ended": True}
        agent.tick()
        health = (await client.get("/api/v1/health")).json()
        metrics = (await client.get("/metrics")).text
    assert health["ffmpeg"]["frame"] == 180 and health["ffmpeg"]["ended"] and health["ffmpeg"]["via"] == "http"
    assert "streamhealth_ffmpeg_speed_ratio 1.0" in metrics
    assert "streamhealth_ffmpeg_frames_total 180.0" in metrics


async def test_garbage_posted_as_progress_is_refused_and_the_agent_keeps_serving(tmp_path: Path, started: Any) -> None:
    agent = await started(_settings(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://a") as client:
        response = await client.post("/api/v1/ffmpeg/progress", content=b"\x00" * 20_000)
        assert response.status_code == 400 and "not ffmpeg -progress output" in response.json()["detail"]
        assert (await client.get("/api/v1/health")).status_code == 200


async def test_ffmpeg_going_silent_without_end_is_reported(tmp_path: Path, started: Any) -> None:
    agent = await started(_settings(tmp_path, STREAMHEALTH_SOURCES__FFMPEG__STALE_AFTER_S="1"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://a") as client:
        await client.post("/api/v1/ffmpeg/progress", content=b"frame=30\nspeed=1x\nprogress=continue\n")
    await async_wait_until(
        lambda: "no progress from ffmpeg" in (agent.tick().sources["ffmpeg"].error or ""), 6, "the silence reported"
    )
    status = agent.tick().sources["ffmpeg"]
    await async_wait_until(lambda: agent.tick().sources["ffmpeg"].state == "stale", 4, "stale")
    assert "stalled" in (status.error or "")


async def test_the_progress_endpoint_says_whether_it_takes_progress(tmp_path: Path, started: Any) -> None:
    on = await started(_settings(tmp_path))
    off = await started(_settings(tmp_path, STREAMHEALTH_SOURCES__FFMPEG__HTTP_ENDPOINT="false"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(on)), base_url="http://a") as client:
        assert (await client.get("/api/v1/ffmpeg/progress")).json() == {"accepting": True}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(off)), base_url="http://a") as client:
        refused = await client.get("/api/v1/ffmpeg/progress")
        assert refused.status_code == 404 and "http_endpoint" in refused.json()["detail"]
        posted = await client.post("/api/v1/ffmpeg/progress", content=b"frame=1\nprogress=continue\n")
        assert posted.status_code == 404
    assert off.tick().ffmpeg is None

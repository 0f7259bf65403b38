"""The OBS source inside a real agent, against the loopback obs-websocket peer replaying OBS 29.

What a user sees: the API's health snapshot, the metrics, the health log, the terminal. The stream key
(the recorded `obs` and a distinctive one) and the password never appear in any of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.api.app import create_app
from agent.models import ObsSample
from agent.runtime import Agent
from agent.settings import Settings, load_settings
from agent.sources.obs import ObsSource
from tests.peers.obs_websocket import FIXTURE_PASSWORD, RecordedObs, recorded_obs
from tests.peers.wait import async_wait_until, free_port

DISTINCTIVE_KEY = "live_123456789_SuperSecretKeyXYZ"


def _settings(tmp_path: Path, url: str, password: str = FIXTURE_PASSWORD, **env: str) -> Settings:
    environ = {
        "STREAMHEALTH_SOURCES__OBS__URL": url,
        "STREAMHEALTH_SOURCES__OBS__PASSWORD": password,
        "STREAMHEALTH_SOURCES__OBS__POLL_INTERVAL_S": "0.2",
        "STREAMHEALTH_SOURCES__OBS__REQUEST_TIMEOUT_S": "2",
        "STREAMHEALTH_SOURCES__SYSTEM__ENABLED": "false",
        "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        **env,
    }
    return load_settings(None, environ=environ)


@pytest.fixture
async def obs(obs_session_path: Path) -> AsyncIterator[RecordedObs]:
    async with recorded_obs(obs_session_path) as server:
        yield server


class Running:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://agent")

    @property
    def source(self) -> ObsSource:
        return next(source for source in self.agent.sources if isinstance(source, ObsSource))

    def obs(self) -> ObsSample | None:
        return self.agent.tick().obs

    async def wait_for(self, condition: Any, what: str, timeout_s: float = 10) -> None:
        await async_wait_until(lambda: (sample := self.obs()) is not None and condition(sample), timeout_s, what)

    async def health(self) -> dict[str, Any]:
        response = await self.http.get("/api/v1/health")
        assert response.status_code == 200
        return dict(response.json())


@pytest.fixture
async def run_agent() -> AsyncIterator[Any]:
    running: list[Running] = []

    async def start(settings: Settings) -> Running:
        agent = Agent(settings)
        await agent.start()
        running.append(Running(agent))
        return running[-1]

    yield start
    for item in running:
        await item.http.aclose()
        if item.agent._tasks:
            async with asyncio.timeout(15):
                await item.agent.stop("test ended")


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, f"{path}[]")
    elif isinstance(value, str):
        yield path, value


async def test_stream_key_and_password_never_appear_in_api_metrics_log_or_output(
    obs: RecordedObs,
    tmp_path: Path,
    run_agent: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    obs.replace_stream_key(DISTINCTIVE_KEY)
    caplog.set_level("DEBUG")
    running = await run_agent(_settings(tmp_path, obs.url))
    await running.wait_for(lambda s: s.connection == "connected" and s.settings is not None, "OBS connected")
    await running.wait_for(lambda s: s.streaming, "a streaming poll from the recording")
    health = await running.health()
    settings = health["obs"]["settings"]
    assert settings["width"] == 1280 and settings["height"] == 720 and settings["fps"] == 30
    assert settings["video_bitrate_kbps"] == 2500 and settings["output_mode"] == "Simple"
    assert settings["keyframe_interval_s"] == 2.0
    assert settings["server"] == "rtmp://127.0.0.1:1936/live"
    metrics = (await running.http.get("/metrics")).text
    assert 'streamhealth_frames_dropped_total{cause="network"} 0.0' in metrics
    assert "streamhealth_output_sent_bytes_total" in metrics
    await running.agent.stop("test ended")
    log_text = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*") if path.is_file())
    assert '"obs"' in log_text  # the snapshot with the OBS sample was logged
    printed = capsys.readouterr()
    for where, text in {
        "health": json.dumps(health),
        "metrics": metrics,
        "log file": log_text,
        "stdout": printed.out,
        "stderr": printed.err,
        "log records": caplog.text,
    }.items():
        assert DISTINCTIVE_KEY not in text, where
        assert FIXTURE_PASSWORD not in text, where


async def test_recorded_stream_key_obs_is_not_served(obs: RecordedObs, tmp_path: Path, run_agent: Any) -> None:
    running = await run_agent(_settings(tmp_path, obs.url))
    await running.wait_for(lambda s: s.settings is not None, "OBS settings read")
    health = await running.health()
    served = [(path, value) for path, value in _strings(health) if value == "obs" and not path.endswith(".name")]
    assert served == []
    assert ("GetStreamServiceSettings", None) in obs.requests  # it was read, and dropped


async def test_wrong_password_shows_auth_failed_and_does_not_retry_until_asked(
    obs: RecordedObs, tmp_path: Path, run_agent: Any
) -> None:
    running = await run_agent(_settings(tmp_path, obs.url, password="wrong-password"))
    await running.wait_for(lambda s: s.connection == "auth_failed", "auth_failed")
    sample = running.obs()
    assert sample is not None and "check sources.obs.password" in (sample.connection_detail or "")
    await asyncio.sleep(1.5)  # a retry storm would show here as more connections
    assert obs.connections == 1
    assert (await running.health())["sources"]["obs"]["state"] == "ok"
    response = await running.http.post("/api/v1/obs/reconnect")
    assert response.status_code == 200
    await async_wait_until(lambda: obs.connections == 2, 5, "a second attempt after being asked")


async def test_kicked_from_obs_stays_disconnected_until_asked(obs: RecordedObs, tmp_path: Path, run_agent: Any) -> None:
    running = await run_agent(_settings(tmp_path, obs.url))
    await running.wait_for(lambda s: s.connection == "connected", "OBS connected")
    await obs.close_all(4011, "kicked")
    await running.wait_for(lambda s: s.connection == "kicked", "kicked")
    await asyncio.sleep(1.5)
    assert obs.connections == 1
    await running.http.post("/api/v1/obs/reconnect")
    await running.wait_for(lambda s: s.connection == "connected", "connected again")
    assert obs.connections == 2


async def test_obs_not_running_shows_not_connected_then_connects_when_obs_starts(
    obs_session_path: Path, tmp_path: Path, run_agent: Any
) -> None:
    port = free_port()
    running = await run_agent(_settings(tmp_path, f"ws://127.0.0.1:{port}"))
    await running.wait_for(lambda s: s.connection == "not_connected", "not_connected")
    sample = running.obs()
    assert sample is not None and "start OBS" in (sample.connection_detail or "")
    assert "retrying in" in (sample.connection_detail or "")
    async with recorded_obs(obs_session_path) as late_obs:
        await late_obs.stop()
        await late_obs.start(port)
        await running.wait_for(lambda s: s.connection == "connected", "connected once OBS runs", timeout_s=15)


async def test_obs_closing_mid_session_reconnects_and_keeps_settings(
    obs: RecordedObs, tmp_path: Path, run_agent: Any
) -> None:
    running = await run_agent(_settings(tmp_path, obs.url))
    await running.wait_for(lambda s: s.connection == "connected" and s.settings is not None, "OBS connected")
    await obs.close_all(None)  # OBS crashed: no close frame
    await running.wait_for(lambda s: s.connection == "not_connected", "not_connected")
    sample = running.obs()
    assert sample is not None and sample.settings is not None  # what was measured is kept
    await running.wait_for(lambda s: s.connection == "connected", "reconnected")
    assert obs.connections == 2


@pytest.mark.parametrize("garbage", ["not json at all", b"\x00\xffbinary", json.dumps({"op": 9, "d": {}})])
async def test_garbage_frames_drop_the_connection_and_the_agent_keeps_serving(
    obs: RecordedObs, tmp_path: Path, run_agent: Any, garbage: str | bytes
) -> None:
    obs.garbage_after_identified = garbage
    running = await run_agent(_settings(tmp_path, obs.url))
    await running.wait_for(
        lambda s: s.connection == "not_connected" and "dropped the connection" in (s.connection_detail or ""),
        "the garbage reported",
    )
    assert (await running.health())["obs"]["connection"] == "not_connected"
    obs.garbage_after_identified = None
    await running.wait_for(lambda s: s.connection == "connected", "reconnected after the garbage")


async def test_counters_resetting_mid_session_give_a_new_baseline_not_negative_ratios(
    obs: RecordedObs, tmp_path: Path, run_agent: Any
) -> None:
    def stats(total: int, skipped: int) -> dict[str, Any]:
        return {
            "outputTotalFrames": total,
            "outputSkippedFrames": skipped,
            "renderTotalFrames": total,
            "renderSkippedFrames": 0,
            "cpuUsage": 10.0,
            "activeFps": 30.0,
        }

    def status(total: int, skipped: int, sent: int) -> dict[str, Any]:
        return {
            "outputActive": True,
            "outputTotalFrames": total,
            "outputSkippedFrames": skipped,
            "outputBytes": sent,
            "outputCongestion": 0.0,
            "outputReconnecting": False,
            "outputDuration": 1000,
        }

    for total, skipped, sent in ((5000, 300, 9_000_000), (5030, 300, 9_100_000), (20, 0, 40_000), (50, 3, 140_000)):
        obs.answer_next("GetStats", stats(total, skipped))
        obs.answer_next("GetStreamStatus", status(total, skipped, sent))
    running = await run_agent(_settings(tmp_path, obs.url))
    await async_wait_until(lambda: running.source.deriver.baseline_resets >= 1, 10, "the reset seen")
    await running.wait_for(lambda s: s.frames_output_total == 50 or s.frames_output_total != 20, "after the reset")
    history = await running.http.get("/api/v1/history", params={"metric": "obs.frames_dropped_network_ratio_10s"})
    values = [point[1] if isinstance(point, list) else point["value"] for point in history.json()["points"]]
    assert values and all(value >= 0 for value in values)
    assert 0.1 in values  # 3 of the 30 frames after the restart, not a ratio against the old counters


def _congested_status(congestion: float, total: int) -> dict[str, Any]:
    return {
        "outputActive": True,
        "outputReconnecting": False,
        "outputCongestion": congestion,
        "outputTotalFrames": total,
        "outputSkippedFrames": 0,
        "outputBytes": 1000 * total,
        "outputDuration": 1000,
    }


async def test_profile_change_event_makes_the_source_read_the_stream_configuration_again(
    obs: RecordedObs, tmp_path: Path, run_agent: Any
) -> None:
    running = await run_agent(_settings(tmp_path, obs.url))
    await running.wait_for(lambda s: s.settings is not None, "OBS settings read")
    reads = obs.requests.count(("GetVideoSettings", None))
    obs.answer_next("GetVideoSettings", {"fpsNumerator": 60, "fpsDenominator": 1, "outputWidth": 1920,
                                         "outputHeight": 1080, "baseWidth": 1920, "baseHeight": 1080})  # fmt: skip
    await obs.push_event("CurrentProfileChanged", {"profileName": "Other"}, intent=2)
    await running.wait_for(lambda s: s.settings is not None and s.settings.fps == 60, "the new settings")
    assert obs.requests.count(("GetVideoSettings", None)) == reads + 1
    sample = running.obs()
    assert sample is not None and sample.settings is not None and sample.settings.width == 1920


async def test_rising_congestion_makes_the_source_poll_faster(obs: RecordedObs, tmp_path: Path, run_agent: Any) -> None:
    running = await run_agent(_settings(tmp_path, obs.url, STREAMHEALTH_SOURCES__OBS__POLL_INTERVAL_S="1"))
    await running.wait_for(lambda s: s.connection == "connected", "connected")
    calm = obs.requests.count(("GetStreamStatus", None))
    await asyncio.sleep(2.0)
    calm = obs.requests.count(("GetStreamStatus", None)) - calm
    for step in range(12):
        obs.answer_next("GetStreamStatus", _congested_status(0.1 + 0.05 * step, 100 + 10 * step))
    before = obs.requests.count(("GetStreamStatus", None))
    await async_wait_until(
        lambda: obs.requests.count(("GetStreamStatus", None)) - before >= 6, 3, "fast polls while congested"
    )
    assert calm <= 3  # about one poll a second before; six within 3 s needs the fast interval


async def test_backup_plan_switches_to_the_backup_scene_on_sustained_congestion(
    obs: RecordedObs, tmp_path: Path, run_agent: Any
) -> None:
    obs.answer_next("GetCurrentProgramScene", {"currentProgramSceneName": "Main"})
    obs.answer_next("SetCurrentProgramScene", {})
    for step in range(40):
        obs.answer_next("GetStreamStatus", _congested_status(0.9, 100 + 10 * step))
    settings = _settings(
        tmp_path,
        obs.url,
        STREAMHEALTH_SOURCES__OBS__BACKUP_SCENE__ENABLED="true",
        STREAMHEALTH_SOURCES__OBS__BACKUP_SCENE__SCENE="BRB",
        STREAMHEALTH_SOURCES__OBS__BACKUP_SCENE__ENTER_AFTER_S="0.5",
    )
    running = await run_agent(settings)
    await running.wait_for(lambda s: s.backup_scene_active, "the backup scene on air")
    assert ("SetCurrentProgramScene", {"sceneName": "BRB"}) in obs.requests
    sample = running.obs()
    assert sample is not None and sample.program_scene == "BRB" and "congestion" in (sample.backup_scene_reason or "")

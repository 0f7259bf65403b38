"""End to end: a real agent (HTTP API, event stream, health log) on a loopback port, and the TUI
driven by Pilot through the real client. The agent stops and starts again on the same port: the TUI
shows it unreachable, keeps the last data, and reconnects by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from agent.models import FfmpegSample
from agent.server import AgentServer
from agent.settings import Settings, load_settings
from tui.app import StreamHealthApp, build_app
from tui.client import AgentClient
from tui.screens.history import HistoryScreen
from tui.widgets.metric_tile import MetricTile
from tui.widgets.status import TroubleBanner

pytestmark = pytest.mark.integration


def agent_settings(logs_dir: Path, port: int = 0) -> Settings:
    return load_settings(
        environ={
            "STREAMHEALTH_API__HOST": "127.0.0.1",
            "STREAMHEALTH_API__PORT": str(port),
            "STREAMHEALTH_LOGS__DIR": str(logs_dir),
            "STREAMHEALTH_SAMPLING__INTERVAL_S": "0.5",
            "STREAMHEALTH_SOURCES__SYSTEM__PROCESS_SCAN_INTERVAL_S": "60",
        }
    )


@pytest.fixture
async def agent_server(tmp_path: Path) -> AsyncIterator[AgentServer]:
    server = AgentServer(agent_settings(tmp_path / "logs"))
    await server.start()
    server.test_running = True  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        if server.test_running:  # type: ignore[attr-defined]  # the test may have stopped it already
            await server.stop("test finished")


async def until(pilot: Pilot[None], what: str, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)  # not pilot.pause: a busy app may never be idle


def cpu_text(app: StreamHealthApp) -> str:
    return app.screen.query_one("#tile-cpu", MetricTile).render().plain


async def test_tui_follows_a_real_agent_shows_its_run_and_survives_a_restart(
    agent_server: AgentServer, tmp_path: Path
) -> None:
    client = AgentClient(agent_server.url, backoff_first_s=0.1, backoff_max_s=0.5)
    app = build_app(client, agent_label=f"agent {agent_server.url}", refresh_interval_s=0.25)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, "the CPU tile to show the system source", lambda: "cores" in cpu_text(app))
        assert "OK" in cpu_text(app) or "WARN" in cpu_text(app) or "CRIT" in cpu_text(app)

        # A stream goes live on the agent (ffmpeg progress): History lists the session, live, with its summary.
        agent_server.agent.publish("ffmpeg", FfmpegSample(frame=30, out_time_s=1.0, bitrate_bps=2e6))
        await until(pilot, "a live session", lambda: agent_server.agent.sessions.session_id is not None)
        session_id = agent_server.agent.sessions.session_id
        await pilot.press("4")
        await until(pilot, "the History screen", lambda: isinstance(app.screen, HistoryScreen))
        timeline = app.screen.query_one("#timeline")
        await until(pilot, "the live session's summary", lambda: str(session_id) in str(timeline.render()))
        assert "live now" in str(timeline.render())
        await pilot.press("v")  # the agent runs
        run_id = agent_server.agent.log_writer.stem if agent_server.agent.log_writer else "?"
        await until(pilot, "the current run's timeline", lambda: run_id in str(timeline.render()))
        await pilot.press("1")

        port = agent_server.port
        assert port is not None
        await agent_server.stop("restart for the test")
        agent_server.test_running = False  # type: ignore[attr-defined]
        banner = app.screen.query_one(TroubleBanner)
        await until(pilot, "the unreachable banner", lambda: banner.display and "UNREACHABLE" in banner.render().plain)
        await until(pilot, "stale tiles", lambda: "STALE" in cpu_text(app))
        assert "cores" in cpu_text(app)  # the last data stays, marked stale

        again = AgentServer(agent_settings(tmp_path / "logs", port))
        await again.start()
        try:
            await until(pilot, "reconnection", lambda: client.state == "connected" and not banner.display)
            await until(pilot, "fresh data", lambda: "STALE" not in cpu_text(app))
        finally:
            await asyncio.wait_for(again.stop("test finished"), 15)
        await pilot.press("q")

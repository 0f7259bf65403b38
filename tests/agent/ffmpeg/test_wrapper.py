"""`streamhealth run -- ffmpeg ...` with the real ffmpeg: progress added, everything else passed through."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.ffmpeg.wrapper import run_wrapped, with_progress
from agent.server import AgentServer
from agent.settings import Settings, load_settings
from tests.peers.wait import async_wait_until, free_port, wait_until

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)")

REPO = Path(__file__).resolve().parents[3]


def _ffmpeg(seconds: float, *extra: str, realtime: bool = False) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *(["-re"] if realtime else []),
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", *extra, "-f", "null", "-",
    ]  # fmt: skip


def _settings(tmp_path: Path, port: int) -> Settings:
    return load_settings(
        None,
        environ={
            "STREAMHEALTH_API__PORT": str(port),
            "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
            "STREAMHEALTH_SOURCES__SYSTEM__ENABLED": "false",
            "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        },
    )


def test_progress_is_added_as_global_options_and_nothing_else_changes() -> None:
    command = ["ffmpeg", "-i", "in.mp4", "-c", "copy", "-f", "flv", "rtmp://host/app/key"]
    assert with_progress(command, "tcp://127.0.0.1:9") == [
        "ffmpeg", "-progress", "tcp://127.0.0.1:9", "-stats_period", "1", *command[1:]
    ]  # fmt: skip
    own_period = ["ffmpeg", "-stats_period", "5", "-i", "x"]
    assert with_progress(own_period, "u") == ["ffmpeg", "-progress", "u", *own_period[1:]]


async def test_without_an_agent_the_wrapper_watches_ffmpeg_itself_and_returns_its_exit_code(tmp_path: Path) -> None:
    out = io.StringIO()
    code = await run_wrapped(_ffmpeg(2), _settings(tmp_path, free_port()), out=out)
    assert code == 0
    assert "ffmpeg wrote 60 frames (2.0 s of media)" in out.getvalue()


async def test_ffmpeg_failure_exit_code_passes_through(tmp_path: Path) -> None:
    out = io.StringIO()
    failing = ["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"]
    direct_run = await asyncio.create_subprocess_exec(*failing)
    direct = await direct_run.wait()
    assert direct != 0
    assert await run_wrapped(failing, _settings(tmp_path, free_port()), out=out) == direct


async def test_command_not_found_says_so_with_exit_127(tmp_path: Path) -> None:
    out = io.StringIO()
    assert await run_wrapped(["no-such-ffmpeg-here"], _settings(tmp_path, free_port()), out=out) == 127
    assert "not found" in out.getvalue()


async def test_a_command_with_its_own_progress_runs_unchanged(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = tmp_path / "own-progress.txt"
    assert await run_wrapped(_ffmpeg(1, "-progress", str(progress)), _settings(tmp_path, free_port()), out=out) == 0
    assert b"progress=end" in progress.read_bytes()
    assert "running it unchanged" in out.getvalue()


@pytest.mark.integration
async def test_with_an_agent_running_ffmpeg_reports_to_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path, free_port())
    server = AgentServer(settings)
    await server.start()
    try:
        out = io.StringIO()
        assert await run_wrapped(_ffmpeg(2), settings, out=out) == 0
        assert "progress goes to the agent" in out.getvalue()
        sample = server.agent.tick().ffmpeg
        assert sample is not None and sample.via == "wrapper" and sample.frame == 60 and sample.ended
        assert "falling behind" not in out.getvalue()
    finally:
        await server.stop()


@pytest.mark.integration
async def test_an_agent_restarted_while_ffmpeg_runs_gets_its_progress_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path, free_port())
    out = io.StringIO()
    first = AgentServer(settings)
    await first.start()
    wrapped = asyncio.create_task(run_wrapped(_ffmpeg(8, realtime=True), settings, out=out))
    second = AgentServer(settings)
    try:
        await async_wait_until(lambda: first.agent.tick().ffmpeg is not None, 10, "progress in the first agent")
        await first.stop()  # the TUI with its embedded agent closed ...
        await second.start()  # ... and opened again on the same port
        await async_wait_until(
            lambda: (sample := second.agent.tick().ffmpeg) is not None and (sample.frame or 0) > 0,
            10,
            "progress relayed to the restarted agent",
        )
        assert not wrapped.done()  # ffmpeg never noticed
        assert await asyncio.wait_for(wrapped, 20) == 0
        await async_wait_until(lambda: (s := second.agent.tick().ffmpeg) is not None and s.ended, 5, "the end")
    finally:
        if not wrapped.done():
            wrapped.cancel()
        await second.stop()
    assert "lost the agent" in out.getvalue()
    assert "ffmpeg wrote 240 frames" in out.getvalue()


@pytest.mark.integration
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_signal_to_the_wrapper_reaches_ffmpeg_and_its_exit_code_comes_back(tmp_path: Path) -> None:
    env = {**os.environ, "STREAMHEALTH_API__PORT": str(free_port()), "STREAMHEALTH_LOGS__DIR": str(tmp_path)}
    progress_log = tmp_path / "stderr.txt"
    with progress_log.open("wb") as stderr:
        wrapper = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--", *_ffmpeg(60, realtime=True)],
            cwd=REPO, env=env, stderr=stderr, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # The wrapper's printer only speaks at the end, so wait for ffmpeg itself to be running.
            wait_until(lambda: _child_ffmpeg(wrapper.pid) is not None, 20, "ffmpeg started by the wrapper")
            time.sleep(1.0)  # let ffmpeg install its own signal handlers (it starts encoding within ~0.5 s)
            started = time.monotonic()
            wrapper.send_signal(signal.SIGTERM)
            code = wrapper.wait(20)
        finally:
            if wrapper.poll() is None:
                wrapper.kill()
                wrapper.wait()
    assert time.monotonic() - started < 15
    assert code == 255, progress_log.read_text()  # ffmpeg's own exit code after a termination signal, passed through
    assert "ffmpeg wrote" in progress_log.read_text()


def _child_ffmpeg(pid: int) -> int | None:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        for child in children.read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() == "ffmpeg":
                return int(child)
    except OSError:
        return None
    return None


@pytest.mark.integration
async def test_an_agent_without_the_ffmpeg_source_is_not_used(tmp_path: Path) -> None:
    settings = _settings(tmp_path, free_port())
    agent_settings = settings.model_copy(
        update={
            "sources": settings.sources.model_copy(
                update={"ffmpeg": settings.sources.ffmpeg.model_copy(update={"enabled": False})}
            )
        }
    )
    server = AgentServer(agent_settings)
    await server.start()
    try:
        out = io.StringIO()
        assert await run_wrapped(_ffmpeg(1), settings, out=out) == 0
        assert "progress goes to the agent" not in out.getvalue()
        assert "ffmpeg wrote 30 frames" in out.getvalue()
        assert server.agent.tick().ffmpeg is None
    finally:
        await server.stop()


@pytest.mark.integration
async def test_the_wrapper_relays_to_an_agent_that_requires_a_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path, free_port())
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"token": SecretStr("a-long-random-test-token")})}
    )
    server = AgentServer(settings)
    await server.start()
    try:
        out = io.StringIO()
        assert await run_wrapped(_ffmpeg(1), settings, out=out) == 0
        sample = server.agent.tick().ffmpeg
        assert sample is not None and sample.via == "wrapper" and sample.ended
        assert "a-long-random-test-token" not in out.getvalue()
    finally:
        await server.stop()

"""`streamhealth web` with a real browser (Debian's chromium, headless) against a real agent: the page shows
the Live screen with the agent's numbers, each browser gets its own TUI process (ended when it closes), a
wider bind without a token is refused, and with a token the browser asks once and a wrong one gets no screen."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from agent.models import FfmpegSample
from agent.server import AgentServer
from agent.settings import load_settings
from tests.peers.wait import free_port
from tests.tui.browser import Chromium

pytestmark = pytest.mark.integration

TOKEN = "web-test-token-8c1f4e2a9b7d"


def web_env(tmp_path: Path, agent_port: int, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")}
    env.update({"STREAMHEALTH_API__PORT": str(agent_port), "STREAMHEALTH_LOGS__DIR": str(tmp_path / "web-logs")})
    if token:
        env["STREAMHEALTH_API__TOKEN"] = token
    return env


@pytest.fixture
async def agent(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[AgentServer]:
    token = getattr(request, "param", None)
    environ = {
        "STREAMHEALTH_API__HOST": "127.0.0.1",
        "STREAMHEALTH_API__PORT": "0",
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
    }
    if token:
        environ["STREAMHEALTH_API__TOKEN"] = token
    server = AgentServer(load_settings(environ=environ))
    await server.start()
    try:
        yield server
    finally:
        await server.stop("test finished")


class WebProcess:
    def __init__(self, tmp_path: Path, agent_port: int, token: str | None, *args: str) -> None:
        self.port = free_port()
        self.log = tmp_path / "web.out"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "web", "--port", str(self.port), *args],
            env=web_env(tmp_path, agent_port, token),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/"

    async def started(self) -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(self.url)
                    return
                except httpx.TransportError:
                    assert self.process.poll() is None, self.log.read_text()
                    await asyncio.sleep(0.1)
        raise AssertionError("streamhealth web did not listen")

    def tuis(self) -> list[psutil.Process]:
        return [
            child for child in psutil.Process(self.process.pid).children() if "tui.cli" in " ".join(child.cmdline())
        ]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def web_processes() -> Iterator[list[WebProcess]]:
    started: list[WebProcess] = []
    yield started
    for web in started:
        web.stop()


async def wait_for(condition: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_each_browser_gets_its_own_tui_showing_the_agent_s_numbers(
    agent: AgentServer, tmp_path: Path, web_processes: list[WebProcess]
) -> None:
    web = WebProcess(tmp_path, agent.port or 0, None, "--agent", agent.url)
    web_processes.append(web)
    await web.started()
    agent.agent.publish("ffmpeg", FfmpegSample(frame=300, fps=30.0, out_time_s=10.0, bitrate_bps=3_210_000))
    first, second = Chromium(), Chromium()
    try:
        await first.open(web.url)
        text = await first.wait_for_text("3.21 Mb/s")
        system = agent.agent.snapshot.system
        assert system is not None
        await first.wait_for_text(f"({system.cpu_count_logical} cores)")
        assert "Last 10 min" in text and "Output bitrate" in text
        await first.screenshot(tmp_path / "first.png")
        await second.open(web.url)
        await second.wait_for_text("3.21 Mb/s")
        await wait_for(lambda: len(web.tuis()) == 2, "two TUI processes, one per browser")
        await first.close()
        await wait_for(lambda: len(web.tuis()) == 1, "the closed browser's TUI to end")
        await second.wait_for_text("3.21 Mb/s")  # the other browser's session goes on
    finally:
        await first.close()
        await second.close()


def test_a_bind_beyond_loopback_without_a_token_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "web", "--host", "0.0.0.0", "--port", str(free_port())],
        env=web_env(tmp_path, free_port(), None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "api.token is not set" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("agent", [TOKEN], indirect=True)
async def test_with_a_token_the_browser_asks_once_and_a_wrong_token_gets_no_screen(
    agent: AgentServer, tmp_path: Path, web_processes: list[WebProcess]
) -> None:
    web = WebProcess(tmp_path, agent.port or 0, TOKEN, "--host", "0.0.0.0", "--agent", agent.url)
    web_processes.append(web)
    await web.started()
    async with httpx.AsyncClient() as http:  # no cookie: neither the socket nor the page
        assert (await http.get(web.url + "ws")).status_code == 401
        assert "api.token" in (await http.get(web.url)).text
    browser = Chromium()
    try:
        await browser.open(web.url)
        await wait_for_page(browser, "api.token")
        await browser.evaluate("document.getElementById('token').value = 'not-the-token'; document.forms[0].submit()")
        await wait_for_page(browser, "not right")
        await asyncio.sleep(2)
        assert await browser.screen_text() == ""  # no terminal was ever drawn
        assert web.tuis() == []
        await browser.evaluate(f"document.getElementById('token').value = '{TOKEN}'; document.forms[0].submit()")
        await browser.wait_for_text("Output bitrate")
        await browser.call("Page.navigate", url=web.url)  # the cookie: not asked again
        await browser.wait_for_text("Output bitrate")
        cookies = (await browser.call("Network.getAllCookies")).get("cookies", [])
        assert cookies and all(TOKEN not in cookie["value"] for cookie in cookies)
    finally:
        await browser.close()
    web.stop()
    assert TOKEN not in web.log.read_text()


async def wait_for_page(browser: Chromium, wanted: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while wanted not in (await browser.evaluate("document.body ? document.body.innerText : ''") or ""):
        assert asyncio.get_running_loop().time() < deadline, f"the page never said {wanted!r}"
        await asyncio.sleep(0.2)

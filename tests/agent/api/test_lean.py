"""The agent stays light: it never imports FastAPI (about 7 MB of RSS; the collector keeps it, the agent is
served by plain Starlette) nor pydantic v1 (2.6 MB), not at start-up, not while serving any kind of request.
Each check runs in a fresh interpreter, since anything else in the test process may have loaded them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, httpx
    from agent.api.app import create_app
    from agent.runtime import Agent
    from agent.settings import load_settings

    async def main():
        agent = Agent(load_settings(None, environ={"STREAMHEALTH_LOGS__DIR": sys.argv[1]}), [])
        agent.tick()
        transport = httpx.ASGITransport(app=create_app(agent))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
            statuses = []
            for path in ["/api/v1/health", "/api/v1/alerts", "/api/v1/runs", "/api/v1/history", "/metrics",
                         "/api/v1/ffmpeg/progress", "/api/v1/preflight", "/api/v1/nope", "/api/v1/history?since=x"]:
                statuses.append((await http.get(path)).status_code)
            statuses.append((await http.post("/api/v1/obs/reconnect")).status_code)
            statuses.append((await http.put("/api/v1/health")).status_code)
        print(statuses, "pydantic.v1" in sys.modules, "fastapi" in sys.modules)

    asyncio.run(main())
    """
)


def test_serving_every_kind_of_request_never_imports_pydantic_v1(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    statuses, v1_loaded, fastapi_loaded = run.stdout.strip().rsplit(" ", 2)
    assert statuses == "[200, 200, 200, 200, 200, 404, 404, 404, 422, 404, 405]"
    assert v1_loaded == "False"
    assert fastapi_loaded == "False"


STARTING = textwrap.dedent(
    """
    import asyncio, sys
    import agent.cli, agent.server
    from agent.settings import load_settings
    from agent.server import AgentServer

    async def main():
        settings = load_settings(None, environ={"STREAMHEALTH_LOGS__DIR": sys.argv[1], "STREAMHEALTH_API__PORT": "0"})
        server = AgentServer(settings)  # builds the app with create_app
        await server.start()
        try:
            print(sorted(name for name in sys.modules if name == "fastapi" or name.startswith("fastapi.")))
        finally:
            await server.stop()

    asyncio.run(main())
    """
)


def test_starting_the_agent_never_imports_fastapi(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", STARTING, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"

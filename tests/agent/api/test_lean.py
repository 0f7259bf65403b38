"""The agent's API never loads pydantic v1 (2.6 MB of RSS): not while building routes, not when serving.
Run in a fresh interpreter, since anything else in the test process may have loaded it."""

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
        print(statuses, "pydantic.v1" in sys.modules)

    asyncio.run(main())
    """
)


def test_serving_every_kind_of_request_never_imports_pydantic_v1(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    statuses, v1_loaded = run.stdout.strip().rsplit(" ", 1)
    assert statuses == "[200, 200, 200, 200, 200, 404, 404, 404, 422, 404, 405]"
    assert v1_loaded == "False"

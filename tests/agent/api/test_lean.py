"""The agent stays light where it costs nothing to: the Prometheus client loads at the first scrape, not at
start-up, and the OpenAPI document is built when someone asks for it, then kept as bytes. Each check runs
in a fresh interpreter, since anything else in the test process may have loaded those modules."""

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
        app = create_app(agent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
            statuses = []
            for path in ["/api/v1/health", "/api/v1/alerts", "/api/v1/runs", "/api/v1/history",
                         "/api/v1/ffmpeg/progress", "/api/v1/preflight", "/api/v1/nope", "/api/v1/history?since=x"]:
                statuses.append((await http.get(path)).status_code)
            statuses.append((await http.post("/api/v1/obs/reconnect")).status_code)
            statuses.append((await http.put("/api/v1/health")).status_code)
            before_scrape = "prometheus_client" in sys.modules
            statuses.append((await http.get("/metrics")).status_code)
            after_scrape = "prometheus_client" in sys.modules
            document_built_early = app.openapi_schema is not None
            statuses.append((await http.get("/openapi.json")).status_code)
        print(statuses, before_scrape, after_scrape, document_built_early, app.openapi_schema is not None)

    asyncio.run(main())
    """
)


def test_the_prometheus_client_loads_at_the_first_scrape_and_the_document_when_asked(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    statuses, before_scrape, after_scrape, built_early, dict_kept = run.stdout.strip().rsplit(" ", 4)
    assert statuses == "[200, 200, 200, 200, 404, 404, 404, 422, 404, 405, 200, 200]"
    assert (before_scrape, after_scrape) == ("False", "True")
    assert built_early == "False"
    assert dict_kept == "False"  # only the document's bytes are kept, not FastAPI's dict of it

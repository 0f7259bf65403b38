"""GET /api/v1/sessions and /api/v1/sessions/{id} on a real agent server (uvicorn on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from agent.models import FfmpegSample, utc_now
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.agent.sessions.test_session_index import _logged


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[AgentServer]:
    """A log folder with one ended session from an earlier run, and an agent serving it."""
    # An hour earlier: a run file of its own (the same pid and second would name the server's file).
    earlier = _logged(tmp_path, started_at=utc_now() - timedelta(hours=1))
    for _ in range(3):
        earlier.tick(cpu=0.95)
    await earlier.agent.stop("received SIGINT")
    settings = make_settings(tmp_path, sources__obs__enabled="false", sources__system__enabled="false")
    server = AgentServer(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_sessions_lists_ended_and_live_sessions_newest_first(server: AgentServer) -> None:
    server.agent.publish("ffmpeg", FfmpegSample(frame=30, out_time_s=1.0, bitrate_bps=1e6))
    server.agent.tick()  # the stream goes live on this agent
    live_id = server.agent.sessions.session_id
    assert live_id is not None
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/v1/sessions")
        assert response.status_code == 200
        sessions = response.json()["sessions"]
        assert [s["status"] for s in sessions] == ["live", "ended"]
        assert sessions[0]["session_id"] == live_id
        ended = sessions[1]
        assert ended["end_reason"] == "agent_stopped" and ended["alerts"] == [
            {"kind": "cpu_high", "severity": "critical", "raised": 1}
        ]
        # A unique prefix is enough. Both ids may start with the same second (the earlier run's session went
        # live at wall-clock now too), so the prefix runs to where they differ.
        ended_id = ended["session_id"]
        differ = next(i for i, (a, b) in enumerate(zip(ended_id, live_id, strict=False)) if a != b)
        detail = await client.get(f"/api/v1/sessions/{ended_id[: max(18, differ + 1)]}")
        assert detail.status_code == 200, (ended_id, live_id, detail.text)
        body = detail.json()
        assert body["session_id"] == ended["session_id"]
        assert [entry["change"] for entry in body["alerts_timeline"]] == ["raised"]


async def test_an_unknown_session_is_a_json_404_that_says_where_to_look(server: AgentServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/v1/sessions/19990101T000000Z-000000")
        assert response.status_code == 404
        assert response.json()["error"] == "not found"
        assert "GET /api/v1/sessions lists them" in response.json()["detail"]
        crafted = await client.get("/api/v1/sessions/..%2F..%2Fetc%2Fpasswd")  # never a path: not a route at all
        assert crafted.status_code == 404 and crafted.json()["error"] == "not found"


async def test_openapi_declares_the_session_models_and_the_404_body(server: AgentServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        spec = (await client.get("/openapi.json")).json()
    one = spec["paths"]["/api/v1/sessions/{session_id}"]["get"]["responses"]
    assert one["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SessionDetail")
    assert one["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    listed = spec["paths"]["/api/v1/sessions"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"]["$ref"].endswith("/SessionList")
    assert "ticks_expected" in spec["components"]["schemas"]["SessionSummary"]["properties"]

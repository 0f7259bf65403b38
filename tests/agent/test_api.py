"""The HTTP API against the real app: endpoints, errors, Prometheus naming, token enforcement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.api.app import create_app
from agent.errors import BindRefused
from agent.models import HealthSnapshot
from agent.runtime import Agent
from agent.server import check_bind
from tests.agent.helpers import make_settings, system_sample


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    agent = Agent(make_settings(tmp_path, INGEST__PRIMARY="rtmp://live.twitch.tv/app/live_77_TopSecretKey1"), [])
    agent.publish("system", system_sample(cpu=0.42))
    agent.tick()
    yield agent


def client_for(agent: Agent, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(agent))
    return httpx.AsyncClient(transport=transport, base_url="http://agent", headers=headers)


async def test_health_returns_the_snapshot_of_the_last_tick(agent: Agent) -> None:
    async with client_for(agent) as client:
        response = await client.get("/api/v1/health")
    assert response.status_code == 200
    snapshot = HealthSnapshot.model_validate_json(response.text)
    assert snapshot.system is not None and snapshot.system.cpu_usage_ratio == 0.42
    assert snapshot.schema_version == 1
    assert snapshot.sources["system"].state == "ok"


async def test_the_stream_key_is_never_served(agent: Agent) -> None:
    async with client_for(agent) as client:
        bodies = [(await client.get(path)).text for path in ("/api/v1/health", "/metrics", "/api/v1/alerts")]
    assert all("TopSecretKey1" not in body for body in bodies)
    assert "rtmp://live.twitch.tv/app/<redacted>" in bodies[0]


async def test_history_lists_metrics_and_returns_points(agent: Agent) -> None:
    async with client_for(agent) as client:
        names = (await client.get("/api/v1/history")).json()["metrics"]
        series = (await client.get("/api/v1/history", params={"metric": "system.cpu_usage_ratio"})).json()
        recent = (await client.get("/api/v1/history", params={"metric": "system.cpu_usage_ratio", "last_s": 60})).json()
        future = (
            await client.get(
                "/api/v1/history", params={"metric": "system.cpu_usage_ratio", "since": "2999-01-01T00:00:00+00:00"}
            )
        ).json()
        number_since = (
            await client.get("/api/v1/history", params={"metric": "system.cpu_usage_ratio", "since": "3.2e10"})
        ).json()
    assert "system.cpu_usage_ratio" in names
    assert number_since["points"] == []  # Unix seconds, in exponent notation too: the document's `number`
    assert [value for _, value in series["points"]] == [0.42]
    assert len(recent["points"]) == 1
    assert future["points"] == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"metric": "no.such_metric"}, 404),
        ({"metric": "system.cpu_usage_ratio", "since": "yesterday"}, 422),
        ({"since": "yesterday"}, 422),  # without `metric` too
        ({"since": "nan"}, 422),
        # A time as the document declares it, RFC 3339 with its zone: no bare date, no zone-less time (which
        # hour would it be?), as the collector's `since` (agent/http/times.py).
        ({"metric": "system.cpu_usage_ratio", "since": "2026-11-30"}, 422),
        ({"metric": "system.cpu_usage_ratio", "since": "2026-11-30T12:00:00"}, 422),
        ({"metric": "system.cpu_usage_ratio", "since": "2026-11-30 12:00:00Z"}, 422),
        ({"metric": "system.cpu_usage_ratio", "last_s": "-5"}, 422),
        ({"metric": "system.cpu_usage_ratio", "last_s": "many"}, 422),
    ],
)
async def test_bad_parameters_get_a_4xx_with_a_json_error(agent: Agent, params: dict[str, str], status: int) -> None:
    async with client_for(agent) as client:
        response = await client.get("/api/v1/history", params=params)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]


async def test_unknown_path_is_a_json_404(agent: Agent) -> None:
    async with client_for(agent) as client:
        response = await client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["error"] == "not found"


async def test_alerts_lists_active_and_recently_cleared(agent: Agent) -> None:
    async with client_for(agent) as client:
        body = (await client.get("/api/v1/alerts")).json()
    assert body == {"active": [], "recently_cleared": []}


async def test_metrics_follow_prometheus_naming(agent: Agent) -> None:
    async with client_for(agent) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["streamhealth_cpu_usage_ratio"].samples[0].value == 0.42
    assert families["streamhealth_network_sent_bytes"].type == "counter"
    assert "streamhealth_network_sent_bytes_total" in response.text
    for family in families.values():
        assert family.name.startswith("streamhealth_")
        for sample in family.samples:
            for value in sample.labels.values():
                assert "://" not in value and "redacted" not in value


async def test_openapi_document_is_served(agent: Agent) -> None:
    async with client_for(agent) as client:
        document = (await client.get("/openapi.json")).json()
    assert "/api/v1/health" in document["paths"]
    assert "/api/v1/events" in document["paths"]


async def test_with_a_token_every_endpoint_requires_it(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path, API__TOKEN="correct-horse-battery-staple"), [])
    agent.tick()
    async with client_for(agent) as anonymous, client_for(agent, {"authorization": "Bearer wrong"}) as wrong:
        for path in ("/api/v1/health", "/metrics", "/openapi.json", "/api/v1/events", "/docs"):
            for client in (anonymous, wrong):
                response = await client.get(path)
                assert response.status_code == 401, path
                assert response.json()["error"] == "unauthorized"
                assert "correct-horse" not in response.text
    async with client_for(agent, {"authorization": "Bearer correct-horse-battery-staple"}) as authorised:
        assert (await authorised.get("/api/v1/health")).status_code == 200
        assert (await authorised.get("/metrics")).status_code == 200


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(BindRefused, match=r"api\.token"):
        check_bind(make_settings(tmp_path, API__HOST="0.0.0.0"))
    check_bind(make_settings(tmp_path, API__HOST="0.0.0.0", API__TOKEN="a-long-token-value"))
    check_bind(make_settings(tmp_path, API__HOST="::1"))
    check_bind(make_settings(tmp_path, API__HOST="localhost"))

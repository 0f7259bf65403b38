"""Every 4xx the agent sends is an ErrorBody its OpenAPI document declares; a 405 says what is allowed.
(Schemathesis checks the whole document against a running agent: test_openapi_conformance.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.api.app import create_app
from agent.runtime import Agent
from tests.agent.helpers import make_settings

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    agent = Agent(make_settings(tmp_path), [])
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
        yield http


async def test_every_declared_4xx_is_our_error_body_and_fastapis_own_is_gone(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(document) and "ValidationError" not in document["components"]["schemas"]
    declared = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    declared += 1
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (method, path, status)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"]), (method, path)
    assert declared >= 15


async def test_a_token_makes_every_operation_declare_401_and_the_bearer_scheme(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path, API__TOKEN="declared-token-42"), [])
    transport = httpx.ASGITransport(app=create_app(agent))
    headers = {"Authorization": "Bearer declared-token-42"}
    async with httpx.AsyncClient(transport=transport, base_url="http://agent", headers=headers) as http:
        document = (await http.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    operations = [operation for methods in document["paths"].values() for operation in methods.values()]
    assert all(operation["security"] == [{"apiToken": []}] for operation in operations)
    assert all("401" in operation["responses"] for operation in operations)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/preflight", "GET, POST"),  # two routes share the path: both methods are listed
        ("PUT", "/api/v1/health", "GET"),
        ("TRACE", "/metrics", "GET"),
        ("GET", "/api/v1/obs/reconnect", "POST"),
    ],
)
async def test_method_not_allowed_lists_what_is_in_allow(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) - {"HEAD"} == set(allowed.split(", "))
    assert response.json()["error"] == "method not allowed"


async def test_bandwidth_test_without_a_configured_server_is_a_declared_409(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/bandwidth-test", json={"backend": "http"})
    assert response.status_code == 409
    assert "bandwidth.http_url" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"backend": "http", "url": "rtmp://ingest.example/app/key"},  # a URL for another backend
        {"backend": "rtmp", "url": "rtmp://ingest.example/app"},  # no stream key
        {"url": "http://192.0.2.1:8080"},  # a URL needs its backend
        {"backend": "http", "duration_s": "5"},  # a string is not a number
        {"backend": "http", "url": "http://192.0.2.1:99999"},  # no such port
    ],
)
async def test_bandwidth_test_bodies_the_document_forbids_are_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/api/v1/bandwidth-test", json=body)
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error", "detail"}


async def test_a_body_that_is_not_json_is_a_400_error_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/preflight", content=b"\x00not json", headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert set(response.json()) == {"error", "detail"}


async def test_preflight_does_not_take_zero_for_no(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/preflight", json={"bandwidth": 0})
    assert response.status_code == 422


@pytest.mark.parametrize("url", ["rtmp://ingest.example/app/\x1e", "rtmp://ingest.example/a\x08pp/key"])
async def test_control_characters_in_a_url_are_refused_by_the_documented_pattern(
    client: httpx.AsyncClient, url: str
) -> None:
    # Found by Schemathesis: "\x1e" passed the pattern, then Python's strip() took it for white space and
    # the backend answered 422 "no stream key" to a body the document allowed. The pattern refuses it now.
    response = await client.post("/api/v1/bandwidth-test", json={"backend": "rtmp", "url": url})
    assert response.status_code == 422
    assert "String should match pattern" in response.json()["detail"]

"""The route table serves what it declares: parameters and bodies validated from it, 422 details that name
the field, a 405 per path, and an OpenAPI document derived from the same table (built once, when asked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field, TypeAdapter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from agent.api.app import api_endpoints, create_app
from agent.api.errors import http_error
from agent.api.openapi import DocumentRoutes, build_document
from agent.api.routing import Call, Endpoint, NoParams, routes_of
from agent.runtime import Agent
from tests.agent.helpers import make_settings


class Params(BaseModel):
    item_id: str
    limit: int = Field(10, ge=1, description="At most this many")


class Body(BaseModel):
    name: str


async def echo(call: Call[Params, Body | None]) -> Body:
    return Body(name=f"{call.params.item_id}:{call.params.limit}:{call.body.name if call.body else '-'}")


async def nothing(_: Call[NoParams, None]) -> Body:
    return Body(name="nothing")


ENDPOINTS: list[Endpoint[Params, Body | None] | Endpoint[NoParams, None]] = [
    Endpoint(
        method="POST",
        path="/items/{item_id}",
        handler=echo,
        summary="Echo",
        params=Params,
        body=TypeAdapter(Body | None),
        status_code=201,
        returns=Body,
        errors={409: "Busy"},
    ),
    Endpoint(method="GET", path="/items/{item_id}", handler=nothing, summary="Nothing", returns=Body),
]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=routes_of(ENDPOINTS), exception_handlers={HTTPException: http_error})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield http


async def test_parameters_and_body_are_validated_from_the_declaration(client: httpx.AsyncClient) -> None:
    response = await client.post("/items/a7?limit=3", json={"name": "x"})
    assert (response.status_code, response.json()) == (201, {"name": "a7:3:x"})
    assert (await client.post("/items/a7")).json() == {"name": "a7:10:-"}  # no body: the declared None


@pytest.mark.parametrize(
    ("query", "content", "headers", "named"),
    [
        ("?limit=0", None, {}, "query.limit: Input should be greater than or equal to 1"),
        ("?limit=x", None, {}, "query.limit: Input should be a valid integer"),
        ("", b'{"name": 5}', {"content-type": "application/json"}, "body.name: Input should be a valid string"),
        ("", b'{"name": "x"}', {}, "Content-Type: application/json (got none)"),
        ("", b"{nope", {"content-type": "application/json"}, "body: not JSON"),
    ],
)
async def test_a_bad_request_is_a_422_whose_detail_names_the_field(
    client: httpx.AsyncClient, query: str, content: bytes | None, headers: dict[str, str], named: str
) -> None:
    response = await client.post(f"/items/a7{query}", content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "bad request"
    assert named in response.json()["detail"]


async def test_a_method_the_path_does_not_take_is_a_405_listing_every_method_of_the_path(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/items/a7")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert (await client.head("/items/a7")).status_code == 405  # HEAD is not declared, so not served


def test_a_method_and_path_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        routes_of([ENDPOINTS[1], ENDPOINTS[1]])


def test_the_document_is_derived_from_the_declaration() -> None:
    document = build_document(ENDPOINTS, info={"title": "t", "version": "1"}, token_required=False)
    post = document["paths"]["/items/{item_id}"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in post["parameters"]] == [
        ("item_id", "path", True),
        ("limit", "query", False),
    ]
    assert post["parameters"][1]["description"] == "At most this many"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/Body"}, {"type": "null"}]
    }
    assert "required" not in post["requestBody"]  # the body may be left out
    assert set(post["responses"]) == {"201", "400", "409", "413", "422"}
    assert post["responses"]["409"]["description"] == "Busy"
    get = document["paths"]["/items/{item_id}"]["get"]
    assert set(get["responses"]) == {"200"} and "parameters" not in get
    assert set(document["components"]["schemas"]) == {"Body", "ErrorBody"}


async def test_the_agents_document_is_built_at_the_first_request_and_then_kept(tmp_path: Path) -> None:
    endpoints = api_endpoints(Agent(make_settings(tmp_path), []))
    documents = DocumentRoutes(endpoints, info={"title": "t", "version": "1"}, token_required=False)
    first = documents.document()
    assert documents.document() is first
    # Every operation of the table is in the document, and nothing else.
    app = create_app(Agent(make_settings(tmp_path), []))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as http:
        served = (await http.get("/openapi.json")).json()
    operations = {(method.upper(), path) for path, methods in served["paths"].items() for method in methods}
    assert operations == {(endpoint.method, endpoint.path) for endpoint in endpoints}

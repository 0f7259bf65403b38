"""The shared HTTP vocabulary on a small FastAPI app: 422 details that name the field (and say when a body is
not JSON), a 405 that lists every method of the path, the token dependency's 401 with `WWW-Authenticate`,
the body limit's 413, and a document built once with every error an `ErrorBody`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Body, Depends, FastAPI, Query
from pydantic import BaseModel

from agent.http.auth import token_check
from agent.http.errors import install_error_handlers
from agent.http.limits import BodyLimitMiddleware
from agent.http.openapi import error_responses, serve_documents


class Item(BaseModel):
    name: str


def build(token: str | None = None) -> FastAPI:
    dependencies = [] if token is None else [Depends(token_check(token, description="t", detail="send the token"))]
    app = FastAPI(dependencies=dependencies, openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    serve_documents(app)

    @app.post("/items/{item_id}", status_code=201, responses=error_responses(409, s409="Busy"))
    async def echo(
        item_id: str,
        limit: Annotated[int, Query(ge=1, description="At most this many")] = 10,
        body: Annotated[Item | None, Body()] = None,
    ) -> Item:
        return Item(name=f"{item_id}:{limit}:{body.name if body else '-'}")

    @app.get("/items/{item_id}")
    async def nothing(item_id: str) -> Item:
        return Item(name=item_id)

    app.add_middleware(BodyLimitMiddleware, max_body_bytes=100)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build()), base_url="http://t") as http:
        yield http


async def test_parameters_and_body_are_validated(client: httpx.AsyncClient) -> None:
    response = await client.post("/items/a7?limit=3", json={"name": "x"})
    assert (response.status_code, response.json()) == (201, {"name": "a7:3:x"})
    assert (await client.post("/items/a7")).json() == {"name": "a7:10:-"}  # no body: the declared None


@pytest.mark.parametrize(
    ("query", "content", "headers", "named"),
    [
        ("?limit=0", None, {}, "query.limit: Input should be greater than or equal to 1"),
        ("?limit=x", None, {}, "query.limit: Input should be a valid integer"),
        ("", b'{"name": 5}', {"content-type": "application/json"}, "body.name: Input should be a valid string"),
        ("", b'{"name": "x"}', {}, "body: send JSON with Content-Type: application/json (got none)"),
        ("", b'{"name": "x"}', {"content-type": "text/plain"}, "Content-Type: application/json (got text/plain)"),
        ("", b"{nope", {"content-type": "application/json"}, "body: not JSON (Expecting property name"),
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
    assert response.json() == {"error": "method not allowed", "detail": "Method Not Allowed"}
    assert (await client.head("/items/a7")).status_code == 405  # HEAD is not declared, so not served


async def test_an_oversized_body_is_a_413_error_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/items/a7", json={"name": "x" * 200})
    assert response.status_code == 413
    assert response.json() == {"error": "payload too large", "detail": "request bodies are limited to 100 bytes"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic s3cret-token", "bearer", "Bearer s3cret-tokenx"])
async def test_the_token_dependency_answers_401_with_a_challenge(header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build("s3cret-token")), base_url="http://t") as http:
        response = await http.get("/items/a7", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="streamhealth"'
        assert response.json() == {"error": "unauthorized", "detail": "send the token"}
        assert (await http.get("/openapi.json", headers=headers)).status_code == 401  # the document too
        for scheme in ("Bearer", "bearer", "BEARER"):
            ok = await http.get("/items/a7", headers={"authorization": f"{scheme} s3cret-token"})
            assert ok.status_code == 200


async def test_the_document_declares_every_error_as_an_error_body_and_is_built_once() -> None:
    app = build("s3cret-token")
    built = 0
    original = app.openapi

    def counting() -> dict[str, object]:
        nonlocal built
        built += 1
        return original()

    app.openapi = counting  # type: ignore[method-assign]
    headers = {"authorization": "Bearer s3cret-token"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers) as http:
        document = (await http.get("/openapi.json")).json()
        await http.get("/openapi.json")
    assert built == 1
    post = document["paths"]["/items/{item_id}"]["post"]
    assert set(post["responses"]) == {"201", "400", "401", "408", "409", "413", "422", "431"}
    assert post["responses"]["409"]["description"] == "Busy"
    assert all(
        response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        for status, response in post["responses"].items()
        if status.startswith("4")
    )
    assert "HTTPValidationError" not in str(document)
    assert document["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "t",
    }

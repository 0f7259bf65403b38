"""The OpenAPI document as both services serve it: FastAPI's, with every error an `ErrorBody` (FastAPI's
own `HTTPValidationError` gone) and the errors any request may get declared on each operation from what the
route takes (a body, parameters, a token). Built at the first request, kept as bytes, and served with
/docs and /redoc behind the app's own dependencies, so a token the whole API asks for guards the document too.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from agent import os_features
from agent.http.header_limits import HEADER_DEADLINE_S, MAX_HEADER_BYTES
from agent.models import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be used, e.g. a body that is not JSON (the detail says why)",
    401: "No or a wrong `Authorization: Bearer <token>`",
    403: "The token is known but may not do this (the detail says which token it needs)",
    404: "Not found (the detail says what is missing and how to get it)",
    408: f"The request's headers did not arrive within {HEADER_DEADLINE_S:g} s of its first byte; the connection is closed",
    409: "The service's state does not allow it now (the detail says why)",
    413: "The request body is too large",
    415: "The body is not in a media type this operation takes",
    422: "A parameter or the body does not match this document (the detail names it)",
    431: f"The request line and headers add up to more than {MAX_HEADER_BYTES} bytes; the connection is closed",
    503: "The service cannot answer now (the detail says why); try again after Retry-After",
}
_FASTAPI_OWN = ("HTTPValidationError", "ValidationError")


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own errors: each status an `ErrorBody`; `descriptions` as `s404="..."`."""
    return {
        status: {"model": ErrorBody, "description": descriptions.get(f"s{status}", DESCRIPTIONS[status])}
        for status in statuses
    }


def declare_common_errors(document: dict[str, Any], *, forbidden_too: bool = False) -> None:
    """On every operation, what any request to it may get: 408 and 431 for headers too slow or too large
    (agent/http/header_limits.py, before any route is known), 400 for a body that cannot be read, 422 where
    there is something to validate, 413 where a body is taken, 401 (and 403 where tokens have kinds) where
    a token is asked for (FastAPI writes `security` on an operation whose dependencies ask for one)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
    for methods in document.get("paths", {}).values():
        for method, operation in methods.items():
            common = [408, 431]
            if "requestBody" in operation:
                common.append(400)
            if operation.get("parameters") or "requestBody" in operation:
                common.append(422)
            if method in ("post", "put", "patch"):
                common.append(413)
            if operation.get("security"):
                common += [401, 403] if forbidden_too else [401]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in common:
                declared = responses.get(str(status))
                if declared is None or "HTTPValidationError" in str(declared):
                    responses[str(status)] = {
                        "description": DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_OWN:
        schemas.pop(name, None)


def serve_documents(app: FastAPI, *, forbidden_too: bool = False) -> None:
    """GET /openapi.json (FastAPI's document with our errors, built once at the first request), /docs and
    /redoc, behind the app's own dependencies (a token the whole API asks for guards the document too). The
    app must be made with `openapi_url=None, docs_url=None, redoc_url=None`."""
    cached: list[bytes] = []

    def document() -> bytes:
        if not cached:
            built = app.openapi()
            declare_common_errors(built, forbidden_too=forbidden_too)
            cached.append(json.dumps(built, ensure_ascii=False, separators=(",", ":")).encode())
            app.openapi_schema = None  # the bytes are what is kept
            del built
            os_features.release_freed_memory()  # the schema generator's scratch, not something a service keeps
        return cached[0]

    async def openapi() -> Response:
        return Response(document(), media_type="application/json")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI")

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    for path, endpoint in (("/openapi.json", openapi), ("/docs", swagger_ui), ("/redoc", redoc)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)

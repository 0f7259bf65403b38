"""Errors over HTTP: every 4xx is JSON `ErrorBody` (`{"error": ..., "detail": ...}`), and the OpenAPI
document says so for every status a route can send, so the document and the server cannot disagree.

What each route can answer on its own (404 no such run, 409 a job runs) its author declares with
`error_responses(...)`; what every route may answer (422 bad parameters or body, 413 a body too large,
401 without the token, 405 a method it does not take) is declared here, once, by `declare_common_errors`.
FastAPI's own `HTTPValidationError` never appears: our 422 body is an `ErrorBody` too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from agent.models import ErrorBody
from agent.redact import redact

REASONS: dict[int, str] = {
    400: "bad request",
    401: "unauthorized",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "payload too large",
    422: "bad request",
}
_DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be used, e.g. a body that is not JSON (the detail says why)",
    401: "No or a wrong `Authorization: Bearer <api.token>`",
    404: "Not found (the detail says what is missing and how to get it)",
    409: "The agent's state does not allow it now (the detail says why)",
    413: "The request body is too large",
    422: "A parameter or the body does not match this document (the detail names it)",
}


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the `ErrorBody` model; `descriptions` as `s404="..."`."""
    return {
        status: {"model": ErrorBody, "description": descriptions.get(f"s{status}", _DESCRIPTIONS[status])}
        for status in statuses
    }


def declare_common_errors(app: FastAPI, *, token_required: bool) -> None:
    """Make the OpenAPI document declare, on every operation, the errors any route may send: 422 (ours, not
    FastAPI's HTTPValidationError) where there are parameters or a body, 413 where a body is taken, 401
    everywhere when a token is required. The document is built on the first request for it, not before."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
        for methods in document.get("paths", {}).values():
            for method, operation in methods.items():
                _declare(operation, method, token_required=token_required)
        for fastapi_own in ("HTTPValidationError", "ValidationError"):
            schemas.pop(fastapi_own, None)
        if token_required:
            document["components"]["securitySchemes"] = {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "The agent's api.token"}
            }
            document["security"] = [{"apiToken": []}]
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document


def _declare(operation: dict[str, Any], method: str, *, token_required: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    common = []
    if "requestBody" in operation:
        common.append(400)  # a body that is not JSON at all (FastAPI's own answer, in our ErrorBody)
    if operation.get("parameters") or "requestBody" in operation:
        common.append(422)
    if method.lower() in ("post", "put", "patch"):
        common.append(413)
    if token_required:
        common.append(401)
    for status in common:
        declared = responses.get(str(status))
        own_model = declared is not None and "HTTPValidationError" not in str(declared)
        if not own_model:
            responses[str(status)] = {
                "description": _DESCRIPTIONS[status],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            }


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at this path (GET and POST /preflight are two routes). Asked of the
    routes themselves, method by method, so routers included with a prefix answer too."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = ErrorBody(error=REASONS.get(exc.status_code, "error"), detail=redact(str(exc.detail)))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: a 405 lists what the resource does take
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return JSONResponse(ErrorBody(error=REASONS[422], detail=redact(problems)).model_dump(), status_code=422)

"""Errors over HTTP: every 4xx and 5xx is JSON `ErrorBody` (`{"error": reason, "detail": what to do}`), whoever
raises it: a handler, FastAPI's validation (422), the body limit (413), the router (404, 405 with `Allow`),
the token check (401 with `WWW-Authenticate`). The reason comes from one table; the detail is redacted.

What each status means in a service's OpenAPI document is said in agent/http/openapi.py; this module answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from agent.models import ErrorBody
from agent.redact import redact

REASONS: dict[int, str] = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    408: "request timeout",
    409: "conflict",
    413: "payload too large",
    415: "unsupported media type",
    422: "bad request",
    429: "too many requests",
    431: "request header fields too large",
    503: "service unavailable",
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def reason_of(status: int) -> str:
    return REASONS.get(status, "error")


def error_body(status: int, detail: str) -> bytes:
    """The body as bytes, for answers sent below the framework (the body limit, the collector's fast path).
    The reason is always the table's: clients switch on it; what is more precise goes in the detail."""
    return ErrorBody(error=reason_of(status), detail=redact(detail)).model_dump_json().encode()


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=reason_of(status), detail=redact(detail))
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers or {}))


def validation_detail(errors: Sequence[Any], content_type: str | None = None) -> str:
    """Each problem named by where it is: `query.max_points: Input should be ...; body.url: ...`. A body
    that is not JSON says so, and where, rather than how its bytes failed to be an object."""
    problems = []
    for error in errors:
        location, message = [str(part) for part in error["loc"]], error["msg"]
        if error["type"] == "json_invalid" and len(location) == 2:  # FastAPI's ("body", position)
            location, message = ["body"], f"not JSON ({error['ctx']['error']} at character {location[1]})"
        elif location[:1] == ["body"] and isinstance(error.get("input"), bytes):  # not sent as JSON
            location, message = (
                ["body"],
                f"send JSON with Content-Type: application/json (got {content_type or 'none'})",
            )
        problems.append(f"{'.'.join(location)}: {message}")
    return "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    """Every HTTPException and every validation error of `app` answered as an `ErrorBody`."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: a 405 lists what the resource does take, whichever route refused
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return error_response(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_detail(exc.errors(), request.headers.get("content-type")))


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at this path (GET and POST /preflight are two routes), asked of the
    routes themselves method by method."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]

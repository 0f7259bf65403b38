"""Errors over HTTP: every 4xx is JSON `ErrorBody` (`{"error": ..., "detail": ...}`), whoever raises it:
a handler (404 no such run, 409 a job runs), the validation in agent/api/routing.py (422), the body limit
(413), Starlette's router (404 no such path, 405 with `Allow`).

What each status means in the OpenAPI document is said in agent/api/openapi.py; this module only answers.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


async def http_error(_: Request, exc: Exception) -> Response:
    """Starlette's handler for HTTPException: our body, the exception's headers (a 405's `Allow`, which
    Starlette fills with every method of the path, since each path is one route)."""
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    body = ErrorBody(error=REASONS.get(exc.status_code, "error"), detail=redact(str(exc.detail)))
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # Starlette joins a set: the same answer should read the same every time
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=headers)

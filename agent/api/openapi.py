"""The agent's OpenAPI 3.1 document, written from the route table (agent/api/routing.py) and nothing else,
plus the /docs (Swagger UI) and /redoc pages that read it.

Schemas come from pydantic, with the same mode split FastAPI made (bodies and parameters as validated,
answers as serialised), so a model that differs between the two gets `-Input` / `-Output` components.
The document is built at the first GET /openapi.json, not at start-up (most agents are never asked for
it), and kept as its JSON bytes. Not a second, hand-written copy of the API: everything here is derived.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from agent import os_features
from agent.api.routing import Endpoint
from agent.models import ErrorBody

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF_TEMPLATE.format(model="ErrorBody")}

# What every endpoint may answer besides its own errors, said once here.
COMMON_ERRORS: dict[int, str] = {
    400: "The request cannot be used, e.g. a body that is not JSON (the detail says why)",
    401: "No or a wrong `Authorization: Bearer <api.token>`",
    413: "The request body is too large",
    422: "A parameter or the body does not match this document (the detail names it)",
}
# The sentence an endpoint's own error gets when its declaration gives none.
DEFAULT_DESCRIPTIONS: dict[int, str] = {
    404: "Not found (the detail says what is missing and how to get it)",
    409: "The agent's state does not allow it now (the detail says why)",
    **COMMON_ERRORS,
}


def build_document(
    endpoints: Sequence[Endpoint[Any, Any]], *, info: dict[str, str], token_required: bool
) -> dict[str, Any]:
    """The whole document: paths in declaration order, components sorted by name (as FastAPI's were)."""
    inputs: list[tuple[tuple[int, str], Any, TypeAdapter[Any]]] = [
        ((-1, "error"), "serialization", TypeAdapter(ErrorBody))
    ]
    for index, endpoint in enumerate(endpoints):
        if endpoint.body is not None:
            inputs.append(((index, "body"), "validation", endpoint.body))
        if endpoint.returns is not None:
            inputs.append(((index, "returns"), "serialization", TypeAdapter(endpoint.returns)))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF_TEMPLATE)
    components: dict[str, Any] = dict(definitions.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    for index, endpoint in enumerate(endpoints):
        operation: dict[str, Any] = {"summary": endpoint.summary, "operationId": endpoint.operation_id}
        parameters = _parameters(endpoint, components)
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            body_schema = schemas[((index, "body"), "validation")]
            body: dict[str, Any] = {"content": {"application/json": {"schema": body_schema}}}
            if not _accepts_none(endpoint.body):  # an optional body may be left out (or be null)
                body["required"] = True
            operation["requestBody"] = body
        elif endpoint.raw_body is not None:
            operation["requestBody"] = dict(endpoint.raw_body)
        success: dict[str, Any] = {"description": "Successful Response"}
        if endpoint.returns is not None:
            success["content"] = {"application/json": {"schema": schemas[((index, "returns"), "serialization")]}}
        responses: dict[str, Any] = {str(endpoint.status_code): success}
        for status in _error_statuses(endpoint, token_required=token_required):
            description = endpoint.errors.get(status) or DEFAULT_DESCRIPTIONS[status]
            responses[str(status)] = {
                "description": description,
                "content": {"application/json": {"schema": ERROR_REF}},
            }
        operation["responses"] = responses
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation

    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": paths,
        "components": {"schemas": {name: components[name] for name in sorted(components)}},
    }
    if token_required:
        document["components"]["securitySchemes"] = {
            "apiToken": {"type": "http", "scheme": "bearer", "description": "The agent's api.token"}
        }
        document["security"] = [{"apiToken": []}]
    return document


def _accepts_none(adapter: TypeAdapter[Any]) -> bool:
    try:
        adapter.validate_python(None)
    except ValidationError:
        return False
    return True


def _parameters(endpoint: Endpoint[Any, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    """Each field of the endpoint's parameter model as one OpenAPI parameter, its schema inline."""
    if endpoint.params is None:
        return []
    schema = endpoint.params.model_json_schema(ref_template=REF_TEMPLATE)
    components.update(schema.get("$defs", {}))
    required = set(schema.get("required", ()))
    in_path = endpoint.path_parameters
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "path" if name in in_path else "query",
            "required": name in in_path or name in required,
            "schema": field_schema,
        }
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        parameters.append(parameter)
    return parameters


def _error_statuses(endpoint: Endpoint[Any, Any], *, token_required: bool) -> list[int]:
    """The endpoint's own errors, plus what any request to it may get: 400 for a body that cannot be read,
    422 where there is something to validate, 413 where a body is taken, 401 when a token is required."""
    statuses = set(endpoint.errors)
    has_body = endpoint.body is not None or endpoint.raw_body is not None
    if has_body:
        statuses.add(400)
    if endpoint.takes_input:
        statuses.add(422)
    if endpoint.method in ("POST", "PUT", "PATCH"):
        statuses.add(413)
    if token_required:
        statuses.add(401)
    return sorted(statuses)


class DocumentRoutes:
    """GET /openapi.json (built once, at the first request), /docs and /redoc."""

    def __init__(self, endpoints: Sequence[Endpoint[Any, Any]], *, info: dict[str, str], token_required: bool) -> None:
        self._endpoints = endpoints
        self._info = info
        self._token_required = token_required
        self._json: bytes | None = None

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/openapi.json", self._openapi, methods=["GET"]),
            Route("/docs", self._swagger_ui, methods=["GET"]),
            Route("/redoc", self._redoc, methods=["GET"]),
        ]

    def document(self) -> bytes:
        if self._json is None:
            built = build_document(self._endpoints, info=self._info, token_required=self._token_required)
            self._json = json.dumps(built, ensure_ascii=False, separators=(",", ":")).encode()
            del built
            os_features.release_freed_memory()  # the schema generator's scratch, not something the agent keeps
        return self._json

    async def _openapi(self, _: Request) -> Response:
        return Response(self.document(), media_type="application/json")

    async def _swagger_ui(self, _: Request) -> HTMLResponse:
        return HTMLResponse(_SWAGGER_UI.replace("{title}", self._info["title"]))

    async def _redoc(self, _: Request) -> HTMLResponse:
        return HTMLResponse(_REDOC.replace("{title}", self._info["title"]))


# The pages FastAPI served at /docs and /redoc, minus the OAuth2 redirect (the agent's token is a bearer
# token typed into "Authorize"). The browser loads the viewers from the jsDelivr CDN, as it did before.
_SWAGGER_UI = """<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
<title>{title} - Swagger UI</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
})
</script>
</body>
</html>
"""

_REDOC = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>
</body>
</html>
"""

"""The agent API's route table, and the plain-Starlette glue that serves it.

Each endpoint is declared once, as data: method, path, summary, its parameters (one pydantic model: fields
named in the path are path parameters, the others query parameters), its JSON body, what it answers. The
server validates requests from that declaration and `agent/api/openapi.py` writes the document from it, so
the two cannot drift. Why not FastAPI: its routing, dependency injection and OpenAPI models cost the agent
about 7 MB of RSS (issue 13) for the sliver of them we use. Not for the collector, which keeps FastAPI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

P = TypeVar("P", bound=BaseModel)
B = TypeVar("B")

_PATH_PARAMETER = re.compile(r"{(\w+)}")


class NoParams(BaseModel):
    """The parameters of an endpoint that takes none (unknown query parameters are ignored, as before)."""


@dataclass(frozen=True, slots=True)
class Call(Generic[P, B]):
    """What a handler gets: the request, and its parameters and body already validated."""

    request: Request
    params: P
    body: B


Handler = Callable[[Call[P, B]], Awaitable[Response | BaseModel]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint(Generic[P, B]):
    """One operation of the API. A handler returns a model (sent as JSON with `status_code`) or a Response
    of its own (already-serialised JSON, a stream, Prometheus text).

    `returns` is what the document declares for `status_code` (a model or a union of models; None for a
    body that is not JSON). `errors` are the 4xx statuses the handler itself raises, each with the
    sentence the document gives it (None: the usual one for that status); what any endpoint may answer
    (400, 401, 413, 422) the document adds from the rest of the declaration. `raw_body` documents a body
    the handler reads as a stream itself (ffmpeg's endless `-progress` POST), which is not validated here.
    """

    method: str
    path: str
    handler: Handler[P, B]
    summary: str
    params: type[P] | None = None
    body: TypeAdapter[B] | None = None
    raw_body: Mapping[str, Any] | None = None
    status_code: int = 200
    returns: Any = None
    errors: Mapping[int, str | None] = field(default_factory=dict)

    @property
    def path_parameters(self) -> frozenset[str]:
        return frozenset(_PATH_PARAMETER.findall(self.path))

    @property
    def operation_id(self) -> str:
        """The id FastAPI gave the operation (function, path, method), so clients that used it keep it."""
        return re.sub(r"\W", "_", f"{self.handler.__name__}{self.path}") + f"_{self.method.lower()}"

    @property
    def takes_input(self) -> bool:
        """Whether a request can be refused with 422: it has parameters or a body to validate."""
        has_params = self.params is not None and bool(self.params.model_fields)
        return has_params or self.body is not None or self.raw_body is not None


def routes_of(endpoints: Sequence[Endpoint[Any, Any]]) -> list[Route]:
    """One Starlette route per path with every method declared there, so a method the path does not take
    is a 405 whose `Allow` lists all of them (GET and POST /preflight are two endpoints, one path)."""
    by_path: dict[str, dict[str, Endpoint[Any, Any]]] = {}
    for endpoint in endpoints:
        methods = by_path.setdefault(endpoint.path, {})
        if endpoint.method in methods:
            raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
        methods[endpoint.method] = endpoint
    return [_route(path, methods) for path, methods in by_path.items()]


def _route(path: str, by_method: dict[str, Endpoint[Any, Any]]) -> Route:
    async def dispatch(request: Request) -> Response:
        return await serve(by_method[request.method], request)

    route = Route(path, dispatch, methods=list(by_method))
    # Starlette adds HEAD beside GET; the document does not declare it and an endless event stream cannot
    # answer it, so a HEAD is a 405 as it always was.
    route.methods = set(by_method)
    return route


async def serve(endpoint: Endpoint[P, B], request: Request) -> Response:
    """Validate the parameters, then the body, call the handler and serialise what it returns."""
    params = _params_of(endpoint, request)
    body = await _body_of(endpoint.body, request) if endpoint.body is not None else cast(B, None)
    result = await endpoint.handler(Call(request, params, body))
    if isinstance(result, Response):
        return result
    return Response(
        result.model_dump_json(by_alias=True), status_code=endpoint.status_code, media_type="application/json"
    )


def _params_of(endpoint: Endpoint[P, B], request: Request) -> P:
    model = endpoint.params
    if model is None:
        return cast(P, NoParams())
    # A repeated query parameter counts once, its last value (as Starlette's QueryParams.get).
    given: dict[str, Any] = {**request.query_params, **request.path_params}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        path = endpoint.path_parameters
        raise invalid(exc, lambda name: "path" if name in path else "query") from None


async def _body_of(adapter: TypeAdapter[B], request: Request) -> B:
    """A JSON body, read as FastAPI read it: empty is None; a body is JSON only with a JSON media type
    (`application/json` or `application/*+json`, 422 otherwise); bytes that are not JSON are a 422 that
    says where, and bytes that are not text a 400."""
    raw = await request.body()
    value: Any = None
    if raw:
        content_type = request.headers.get("content-type")
        if content_type is None or not _is_json(content_type):
            given = "none" if content_type is None else content_type
            raise HTTPException(422, f"body: send JSON with Content-Type: application/json (got {given})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise HTTPException(422, f"body: not JSON ({exc.msg} at character {exc.pos})") from None
        except UnicodeDecodeError:
            raise HTTPException(400, "the body is not UTF-8 JSON") from None
    try:
        return adapter.validate_python(value, from_attributes=True)
    except ValidationError as exc:
        raise invalid(exc, lambda _: "body") from None


def _is_json(content_type: str) -> bool:
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def invalid(exc: ValidationError, where: Callable[[str], str]) -> HTTPException:
    """A 422 naming each problem by where it is: `query.max_points: Input should be ...; body.url: ...`."""
    problems = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        location.insert(0, where(location[0] if location else ""))
        problems.append(f"{'.'.join(location)}: {error['msg']}")
    return HTTPException(422, "; ".join(problems))

"""The one class that talks to an agent: httpx for the JSON endpoints and the Server-Sent Events stream.

Every payload is parsed with the agent's own pydantic models and turned into a Textual message
(tui/messages.py) posted to whoever is attached, so the TUI is the same for an embedded or a
remote agent. A bad payload is reported (`PayloadProblem`) and skipped; a lost connection is
reported and retried with a capped backoff. Tests pass an httpx transport, or call `feed()`.
Not for rendering or state: that is the app's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from httpx_sse import SSEError, aconnect_sse
from pydantic import BaseModel, ValidationError

from agent.backoff import Backoff
from agent.models import (
    AlertRecord,
    AlertsView,
    HealthSnapshot,
    HistorySeries,
    JobFinished,
    PreflightReport,
    PreflightStarted,
    Progress,
    RunDetail,
    RunList,
    RunSummary,
    SessionDetail,
    SessionList,
    SessionSummary,
    SourceStateRecord,
    TickRecord,
)
from agent.models.incidents import IncidentList
from tui.messages import (
    AlertChanged,
    ConnectionChanged,
    ConnectionState,
    EventsLagged,
    JobDone,
    JobProgressed,
    PayloadProblem,
    SnapshotReceived,
    SourceStateChanged,
)

log = logging.getLogger(__name__)

API = "/api/v1"
REQUEST_TIMEOUT_S = 5.0
# The agent sends a tick every second and a ping every 15 s: 20 s of silence means the link is dead.
EVENTS_READ_TIMEOUT_S = 20.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0

# Every endpoint the client reads and the model it reads it with: the API's own response models.
# tests/tui/test_contract.py fails when one of these differs from the route's response_model.
RESPONSE_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("GET", f"{API}/health"): HealthSnapshot,
    ("GET", f"{API}/alerts"): AlertsView,
    ("GET", f"{API}/history"): HistorySeries,
    ("GET", f"{API}/runs"): RunList,
    ("GET", f"{API}/runs/{{run_id}}"): RunDetail,
    ("GET", f"{API}/preflight"): PreflightReport,
    ("POST", f"{API}/preflight"): PreflightStarted,
}

ModelT = TypeVar("ModelT", bound=BaseModel)
Poster = Callable[[Any], object]


class AgentRequestError(Exception):
    """A request to the agent failed; `str()` says what happened and what to do, fit for a toast."""


class AgentClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_first_s: float = BACKOFF_FIRST_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        api_root: str = API,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # An agent's API lives at /api/v1; the collector forwards one agent's at /api/v1/agents/{id}.
        self.api = api_root.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT_S, transport=transport
        )
        self.backoff_first_s = backoff_first_s
        self.backoff_max_s = backoff_max_s
        self._post: Poster | None = None
        self.state: ConnectionState = "connecting"
        self.events_received = 0

    def attach(self, post: Poster) -> None:
        """Where messages go: usually `app.post_message`."""
        self._post = post

    def _emit(self, message: object) -> None:
        if self._post is not None:
            self._post(message)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the event stream ------------------------------------------------------------------------

    def feed(self, event: str, data: str) -> None:
        """Parse one Server-Sent Event and post what it says. Never raises on bad input."""
        self.events_received += 1
        try:
            if event == "tick":
                self._emit(SnapshotReceived(TickRecord.model_validate_json(data).snapshot))
            elif event == "alert":
                self._emit(AlertChanged(AlertRecord.model_validate_json(data).change))
            elif event == "source_state":
                self._emit(SourceStateChanged(SourceStateRecord.model_validate_json(data).status))
            elif event == "progress":
                self._emit(JobProgressed(Progress.model_validate_json(data)))
            elif event == "job_finished":
                self._emit(JobDone(JobFinished.model_validate_json(data)))
            elif event == "lagged":
                self._emit(EventsLagged(int(json.loads(data)["missed_events"])))
            # `sample` events repeat what the next tick carries; other types come from newer agents.
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            self._emit(PayloadProblem(event, _describe_payload_error(exc)))

    def set_state(self, state: ConnectionState, detail: str = "", retry_in_s: float | None = None) -> None:
        self.state = state
        self._emit(ConnectionChanged(state, detail, retry_in_s))

    async def run_events(self) -> None:
        """Follow the agent's event stream until cancelled, reconnecting with a capped backoff."""
        backoff = Backoff(min(self.backoff_first_s, self.backoff_max_s), self.backoff_max_s)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=EVENTS_READ_TIMEOUT_S)
        while True:
            self.set_state("connecting", f"connecting to {self.base_url}")
            state: ConnectionState = "disconnected"
            try:
                async with aconnect_sse(self._http, "GET", f"{self.api}/events", timeout=timeout) as source:
                    if source.response.status_code == 401:
                        state = "unauthorized"
                        detail = "the agent refused our token: pass --token or set api.token to the agent's token"
                    elif source.response.status_code != 200:
                        detail = f"the agent answered {source.response.status_code} to GET {self.api}/events"
                    else:
                        self.set_state("connected", f"connected to {self.base_url}")
                        backoff.reset()
                        async for sse in source.aiter_sse():
                            self.feed(sse.event, sse.data)
                        detail = "the agent closed the event stream (restarting?)"
            except httpx.TimeoutException:
                detail = f"no answer from {self.base_url} for {EVENTS_READ_TIMEOUT_S:g} s"
            except httpx.TransportError as exc:
                detail = f"cannot reach the agent at {self.base_url}: {_transport_reason(exc)}"
            except SSEError as exc:
                detail = f"the agent's event stream is not Server-Sent Events: {exc}"
            retry = backoff.next_s() if state != "unauthorized" else self.backoff_max_s
            self.set_state(state, detail, retry)
            await asyncio.sleep(retry)

    # --- JSON endpoints --------------------------------------------------------------------------

    async def _get(self, path: str, model: type[ModelT], **params: Any) -> ModelT:
        response = await self._request("GET", path, params={k: v for k, v in params.items() if v is not None})
        return self._parse(response, model)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise AgentRequestError(f"the agent at {self.base_url} did not answer {method} {path} in time") from None
        except httpx.TransportError as exc:
            raise AgentRequestError(f"cannot reach the agent at {self.base_url}: {_transport_reason(exc)}") from None

    def _parse(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        if response.status_code >= 400:
            raise AgentRequestError(_error_text(response))
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise AgentRequestError(
                f"could not read the agent's answer to {response.request.url.path}: {_describe_payload_error(exc)}"
            ) from None

    async def health(self) -> HealthSnapshot:
        return await self._get(f"{self.api}/health", _model("GET", "/health", HealthSnapshot))

    async def alerts(self) -> AlertsView:
        return await self._get(f"{self.api}/alerts", _model("GET", "/alerts", AlertsView))

    async def history(self, metric: str, last_s: float) -> HistorySeries:
        return await self._get(
            f"{self.api}/history", _model("GET", "/history", HistorySeries), metric=metric, last_s=last_s
        )

    async def runs(self) -> list[RunSummary]:
        return (await self._get(f"{self.api}/runs", _model("GET", "/runs", RunList))).runs

    async def run(self, run_id: str) -> RunDetail:
        return await self._get(f"{self.api}/runs/{run_id}", _model("GET", "/runs/{run_id}", RunDetail))

    async def sessions(self) -> list[SessionSummary]:
        return (await self._get(f"{self.api}/sessions", SessionList)).sessions

    async def session(self, session_id: str) -> SessionDetail:
        return await self._get(f"{self.api}/sessions/{session_id}", SessionDetail)

    async def incidents(self) -> IncidentList:
        """The agent's whole run of incidents (the snapshot carries the last 10 minutes)."""
        return await self._get(f"{self.api}/incidents", IncidentList)

    async def start_preflight(self, platform: str, duration_s: float, bandwidth: bool) -> str:
        """Start a preflight on the agent; returns its job id. Progress and the report arrive as events."""
        body = {"platform": platform, "duration_s": duration_s, "bandwidth": bandwidth}
        response = await self._request("POST", f"{self.api}/preflight", json=body)
        if response.status_code == 409:
            raise AgentRequestError("a preflight is already running on the agent; its progress is shown here")
        if response.status_code in (404, 405):
            raise AgentRequestError("this agent cannot run a preflight yet (update streamhealth on the agent)")
        if response.status_code >= 400:
            raise AgentRequestError(_error_text(response))
        return self._parse(response, _model("POST", "/preflight", PreflightStarted)).job_id

    async def last_preflight(self) -> PreflightReport | None:
        """The report of the last preflight the agent ran (from this TUI or any other client)."""
        response = await self._request("GET", f"{self.api}/preflight")
        if response.status_code in (204, 404, 405):
            return None
        return self._parse(response, _model("GET", "/preflight", PreflightReport))


def _model(method: str, path: str, model: type[ModelT]) -> type[ModelT]:
    """The model RESPONSE_MODELS declares for an endpoint, typed as the caller expects it."""
    declared = RESPONSE_MODELS[(method, f"{API}{path}")]
    assert declared is model, f"{method} {path}: RESPONSE_MODELS says {declared.__name__}, not {model.__name__}"
    return model


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable (is the agent running?)"
    return str(exc) or type(exc).__name__


def _error_text(response: httpx.Response) -> str:
    if response.status_code == 401:
        return "the agent refused our token: pass --token or set api.token to the agent's token"
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error")
    except (ValueError, AttributeError):
        detail = None
    return f"the agent answered {response.status_code}" + (f": {detail}" if detail else "")


def _describe_payload_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return f"{type(exc).__name__}: {exc}"[:200]

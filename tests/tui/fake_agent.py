"""A stand-in agent behind an httpx transport, for TUI tests that need the client's real HTTP and
event-stream code without a server: it answers the API's routes with the agent's JSON and streams
Server-Sent Events the test pushes. It can go down (connection refused) and come back.
The end-to-end test uses a real agent instead."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from agent.models import PreflightStarted, RunDetail, RunSummary, SessionDetail
from agent.models.incidents import IncidentList

_CLOSE = object()


class FakeAgent:
    def __init__(self) -> None:
        self.down = False
        self.token: str | None = None
        self.requests: list[httpx.Request] = []
        self.preflight_bodies: list[dict[str, object]] = []
        self.preflight_status = 202
        self.runs: list[RunSummary] = []
        self.run_details: dict[str, RunDetail] = {}
        self.sessions: list[SessionDetail] = []
        self.incidents: IncidentList | None = None
        self.stream_connections = 0
        self._streams: list[asyncio.Queue[object]] = []

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def push(self, event: str, data: str) -> None:
        """Send one event to every connected event-stream client."""
        for queue in self._streams:
            queue.put_nowait(f"event: {event}\ndata: {data}\n\n")

    def go_down(self) -> None:
        """The agent stops: open streams end, new connections are refused."""
        self.down = True
        for queue in self._streams:
            queue.put_nowait(_CLOSE)
        self._streams.clear()

    def come_back(self) -> None:
        self.down = False

    async def _events(self, queue: asyncio.Queue[object]) -> AsyncIterator[bytes]:
        yield b": connected\n\n"
        while True:
            item = await queue.get()
            if item is _CLOSE:
                return
            assert isinstance(item, str)
            yield item.encode()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": "unauthorized", "detail": "send the agent's api.token"})
        path = request.url.path
        if path == "/api/v1/events":
            queue: asyncio.Queue[object] = asyncio.Queue()
            self._streams.append(queue)
            self.stream_connections += 1
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=self._events(queue))
        if path == "/api/v1/alerts":
            return httpx.Response(200, json={"active": [], "recently_cleared": []})
        if path == "/api/v1/history":
            return httpx.Response(404, json={"error": "not found", "detail": "no metric"})
        if path == "/api/v1/preflight" and request.method == "POST":
            self.preflight_bodies.append(json.loads(request.content))
            if self.preflight_status != 202:
                return httpx.Response(self.preflight_status, json={"error": "conflict", "detail": "running"})
            started = PreflightStarted(job_id="job1", events="/api/v1/events")
            return httpx.Response(202, content=started.model_dump_json())
        if path == "/api/v1/runs":
            return httpx.Response(200, json={"runs": [run.model_dump(mode="json") for run in self.runs]})
        if path.startswith("/api/v1/runs/"):
            detail = self.run_details.get(path.rsplit("/", 1)[1])
            if detail is None:
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(200, content=detail.model_dump_json())
        if path == "/api/v1/incidents" and self.incidents is not None:
            return httpx.Response(200, content=self.incidents.model_dump_json())
        if path == "/api/v1/sessions":
            listed = [session.model_dump(mode="json", exclude={"alerts_timeline", "alerts_truncated"})
                      for session in self.sessions]  # fmt: skip
            return httpx.Response(200, json={"sessions": listed})
        if path.startswith("/api/v1/sessions/"):
            wanted = path.rsplit("/", 1)[1]
            found = [session for session in self.sessions if session.session_id.startswith(wanted)]
            if len(found) != 1:
                return httpx.Response(404, json={"error": "not found", "detail": f"no single session {wanted!r}"})
            return httpx.Response(200, content=found[0].model_dump_json())
        return httpx.Response(404, json={"error": "not found", "detail": path})

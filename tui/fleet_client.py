"""The one class that talks to a collector for the fleet screen: polls GET /api/v1/fleet, posts messages.

A poll is re-armed only when the last one ended, so polls never overlap however slow the collector is;
an unreachable collector is reported and retried with a capped backoff. One agent's own screens go
through `agent_client()`: the agent's client, pointed at the collector's forwarding of that agent.
Tests pass an httpx transport, or call `feed()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError
from textual.message import Message

from agent.backoff import Backoff
from collector.models import FleetView
from tui.client import BACKOFF_FIRST_S, BACKOFF_MAX_S, REQUEST_TIMEOUT_S, AgentClient

FLEET_PATH = "/api/v1/fleet"
Poster = Callable[[Any], object]


class FleetReceived(Message):
    def __init__(self, view: FleetView) -> None:
        super().__init__()
        self.view = view


class FleetUnreachable(Message):
    """The last poll failed: say why (never with the token) and when the next one goes."""

    def __init__(self, detail: str, retry_in_s: float) -> None:
        super().__init__()
        self.detail = detail
        self.retry_in_s = retry_in_s


class FleetClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.transport = transport
        self.interval_s = interval_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT_S, transport=transport
        )
        self._post: Poster | None = None
        self.polls = 0

    def attach(self, post: Poster) -> None:
        self._post = post

    def _emit(self, message: object) -> None:
        if self._post is not None:
            self._post(message)

    async def aclose(self) -> None:
        await self._http.aclose()

    def feed(self, view: FleetView) -> None:
        self._emit(FleetReceived(view))

    def agent_client(self, agent_id: str) -> AgentClient:
        """An agent's Live screen through the collector: same client, same events, another root."""
        return AgentClient(self.base_url, self.token, transport=self.transport, api_root=f"/api/v1/agents/{agent_id}")

    async def fetch(self) -> FleetView:
        """One poll; raises `FleetError` with a sentence fit for the screen."""
        try:
            response = await self._http.get(FLEET_PATH)
        except httpx.TimeoutException:
            raise FleetError(f"the collector at {self.base_url} did not answer in time") from None
        except httpx.TransportError:
            raise FleetError(f"cannot reach the collector at {self.base_url} (is it running?)") from None
        if response.status_code in (401, 403):
            raise FleetError(
                "the collector refused our token: set STREAMHEALTH_COLLECTOR_TOKEN to a read token "
                "(streamhealth collector token --reader NAME)"
            )
        if response.status_code != 200:
            raise FleetError(f"the collector answered {response.status_code} to GET {FLEET_PATH}")
        try:
            return FleetView.model_validate_json(response.content)
        except ValidationError as exc:
            raise FleetError(f"could not read the collector's fleet: {exc.errors()[0]['msg']}") from None

    async def run_polls(self) -> None:
        """Poll until cancelled: every `interval_s` while it answers, backing off while it does not."""
        backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        while True:
            try:
                view = await self.fetch()
            except FleetError as exc:
                delay = round(backoff.next_s(), 1)  # what the screen says is what it waits
                self._emit(FleetUnreachable(str(exc), delay))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.polls += 1
            self._emit(FleetReceived(view))
            await asyncio.sleep(self.interval_s)


class FleetError(Exception):
    pass

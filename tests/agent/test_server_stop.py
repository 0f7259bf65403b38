"""Stopping an agent must not wait for event-stream clients that never hang up (a TUI left open)."""

from __future__ import annotations

import asyncio
import math
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from agent.server import AgentServer
from agent.settings import load_settings

pytestmark = pytest.mark.integration


async def test_agent_stops_promptly_while_an_event_stream_client_is_connected(tmp_path: Path) -> None:
    settings = load_settings(environ={"STREAMHEALTH_API__PORT": "0", "STREAMHEALTH_LOGS__DIR": str(tmp_path)})
    server = AgentServer(settings)
    await server.start()
    got_first_event = asyncio.Event()
    stream_ended = asyncio.Event()

    async def follow() -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(5, read=30)) as http,
            http.stream("GET", f"{server.url}/api/v1/events") as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("event: tick"):
                    got_first_event.set()
        stream_ended.set()

    client = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(got_first_event.wait(), 10)
        await asyncio.wait_for(server.stop("test"), 5)
        await asyncio.wait_for(stream_ended.wait(), 5)
    finally:
        client.cancel()
        await asyncio.gather(client, return_exceptions=True)


async def test_closed_event_bus_ends_current_streams_and_those_that_subscribe_late() -> None:
    from agent.events import EventBus

    bus = EventBus()
    early = bus.subscribe()
    bus.publish("tick", "{}")
    bus.close()
    late = bus.subscribe()  # a client that raced in while the server was shutting down
    early_events = await asyncio.wait_for(_types(bus, early), 2)
    late_events = await asyncio.wait_for(_types(bus, late), 2)
    assert early_events == ["tick"]
    assert late_events == []
    assert bus.subscriber_count == 0


async def _types(bus: object, subscription: object) -> list[str]:
    from agent.events import EventBus, Subscription

    assert isinstance(bus, EventBus) and isinstance(subscription, Subscription)
    return [event.type async for event in bus.stream(subscription)]


async def test_the_date_header_is_fresh_after_the_server_sat_idle_and_stays_fresh_on_an_open_connection(
    tmp_path: Path,
) -> None:
    """The server does not wake while nobody is connected; a client arriving after a quiet spell still
    gets the current Date, and so does a later request on the same keep-alive connection."""
    settings = load_settings(environ={"STREAMHEALTH_API__PORT": "0", "STREAMHEALTH_LOGS__DIR": str(tmp_path)})
    server = AgentServer(settings)
    await server.start()
    try:
        await asyncio.sleep(2.5)  # idle: no connection, no refresh
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(2):
                before = time.time()
                response = await http.get(f"{server.url}/api/v1/health")
                served_at = parsedate_to_datetime(response.headers["date"]).timestamp()
                assert math.floor(before) - 1 <= served_at <= time.time(), response.headers["date"]
                await asyncio.sleep(2.2)  # the same connection, kept open
    finally:
        await server.stop("test")

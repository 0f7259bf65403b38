"""Server-Sent Events on a real uvicorn: many clients, and a slow one never stalls the others."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.peers.wait import async_wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[AgentServer]:
    server = AgentServer(make_settings(tmp_path, SAMPLING__INTERVAL_S="0.1"))
    await server.start()
    yield server
    await server.stop()


async def read_events(response: httpx.Response, into: list[tuple[str, str]]) -> None:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            into.append((event, line.removeprefix("data: ")))


async def test_a_client_gets_the_current_snapshot_at_once_then_ticks(server: AgentServer) -> None:
    received: list[tuple[str, str]] = []
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
        client.stream("GET", "/api/v1/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(read_events(response, received))
        await async_wait_until(lambda: sum(1 for e, _ in received if e == "tick") >= 3, 10, "three ticks")
        reader.cancel()
    first_event, first_data = received[0]
    assert first_event == "tick"
    assert json.loads(first_data)["snapshot"]["schema_version"] == 1


async def test_a_slow_client_loses_its_oldest_events_without_stalling_the_agent_or_others(
    server: AgentServer,
) -> None:
    host, port = "127.0.0.1", server.port
    assert port is not None
    # The slow client: asks for the stream, then never reads, with a tiny receive buffer.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect((host, port))
    slow.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await async_wait_until(lambda: server.agent.bus.subscriber_count == 1, 5, "the slow client to subscribe")
    slow_subscription = next(iter(server.agent.bus._subscriptions))

    received: list[tuple[str, str]] = []
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        client.stream("GET", "/api/v1/events") as response,
    ):
        reader = asyncio.create_task(read_events(response, received))
        await async_wait_until(lambda: server.agent.bus.subscriber_count == 2, 5, "the fast client to subscribe")
        payload = json.dumps({"type": "bulk", "blob": "x" * 65536})
        ticks_before = server.agent.ticks
        # ~40 MB, far more than any socket buffer holds, paced by what the fast client has read so far
        # (the pacing keeps the fast client's own queue from overflowing; the slow one overflows anyway).
        for published in range(1, 601):
            server.agent.bus.publish("bulk", payload)
            if published % 20 == 0:
                await async_wait_until(
                    lambda published=published: sum(1 for e, _ in received if e == "bulk") >= published - 100,
                    20,
                    "the fast client",
                )
        await async_wait_until(
            lambda: sum(1 for e, _ in received if e == "bulk") >= 600, 60, "the fast client to get every event"
        )
        await async_wait_until(lambda: server.agent.ticks >= ticks_before + 3, 10, "the agent to keep ticking")
        reader.cancel()

    assert slow_subscription.dropped > 0
    assert slow_subscription.queue.qsize() <= server.agent.bus.queue_size
    slow.close()
    await async_wait_until(lambda: server.agent.bus.subscriber_count == 0, 20, "both clients to be unsubscribed")

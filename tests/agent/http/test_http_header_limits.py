"""What a peer may cost before its headers are complete, on the real agent and collector servers (loopback):
a silent or dribbling connection gets a 408 at the deadline, oversized headers a 431, the oldest of too many
waiting connections is closed, and a well-behaved client is answered throughout. The deadline is shortened
for the test (the services' is 10 s); everything else is as shipped."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.http.header_limits import MAX_HEADER_BYTES, HeaderLimitedProtocol
from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.collector.helpers import running_collector

DEADLINE_S = 1.0
MARGIN_S = 4.0  # a loaded 2-core machine may run the timer late; far below "held forever"


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HeaderLimitedProtocol, "deadline_s", DEADLINE_S)


@pytest.fixture
async def agent_port(tmp_path: Path) -> AsyncIterator[int]:
    settings = make_settings(tmp_path)
    server = AgentServer(settings, Agent(settings, []))
    await server.start()
    try:
        assert server.port is not None
        yield server.port
    finally:
        await server.stop()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Everything the server sends until it closes: status, headers, body."""
    data = await asyncio.wait_for(reader.read(-1), DEADLINE_S + MARGIN_S)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


async def healthy(port: int) -> bool:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"http://127.0.0.1:{port}/api/v1/health")).status_code == 200


async def test_a_silent_connection_gets_a_408_at_the_deadline_and_others_are_served(agent_port: int) -> None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", agent_port)
    assert await healthy(agent_port)  # served while the silent one waits
    status, headers, body = await read_answer(reader)
    waited_s = time.monotonic() - started
    assert status == 408 and headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert json.loads(body)["error"] == "request timeout"
    assert DEADLINE_S * 0.9 <= waited_s < DEADLINE_S + MARGIN_S
    writer.close()
    assert await healthy(agent_port)


async def test_headers_dribbled_after_a_first_request_get_a_408(agent_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agent_port)
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert first.startswith(b"HTTP/1.1 200")
    length = int(
        next(line.split(b":")[1] for line in first.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    await reader.readexactly(length)
    # The next request, a byte every 0.1 s: it would take 6 s, past uvicorn's 5 s keep-alive were that the bound.
    started = time.monotonic()
    request = b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 40 + b"\r\n\r\n"

    async def dribble() -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)

    dribbling = asyncio.create_task(dribble())
    try:
        status, _, body = await read_answer(reader)
    finally:
        dribbling.cancel()
    assert status == 408 and json.loads(body)["error"] == "request timeout"
    assert time.monotonic() - started < DEADLINE_S + MARGIN_S
    writer.close()


async def test_oversized_headers_get_a_431_and_the_server_goes_on(agent_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agent_port)
    filler = b"".join(b"x-filler-%d: %s\r\n" % (index, b"a" * 1000) for index in range(40))  # 40 kB
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n" + filler + b"\r\n")
    status, headers, body = await read_answer(reader)
    assert status == 431 and headers["connection"] == "close"
    assert json.loads(body) == {
        "error": "request header fields too large",
        "detail": f"a request's line and headers are limited to {MAX_HEADER_BYTES} bytes",
    }
    writer.close()
    # Just under the limit is still a request.
    reader, writer = await asyncio.open_connection("127.0.0.1", agent_port)
    half = b"".join(b"x-filler-%d: %s\r\n" % (index, b"a" * 1000) for index in range(20))  # 20 kB
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + half + b"\r\n")
    status, _, _ = await read_answer(reader)
    assert status == 200
    writer.close()


async def test_too_many_waiting_connections_close_the_oldest(agent_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HeaderLimitedProtocol, "deadline_s", 60.0)  # only the cap can close them in time
    monkeypatch.setattr(HeaderLimitedProtocol, "max_waiting", 8)
    connections = []
    for _ in range(12):
        connections.append(await asyncio.open_connection("127.0.0.1", agent_port))
        await asyncio.sleep(0.02)  # in order: "oldest" must mean the first opened
    for reader, _ in connections[:4]:
        assert await asyncio.wait_for(reader.read(-1), 5) == b""  # closed, nothing sent
    assert await healthy(agent_port)  # the newest came in by closing another old one; served
    for reader, _ in connections[5:]:
        assert not reader.at_eof()
    for _, writer in connections:
        writer.close()


async def test_the_collector_has_the_same_bounds(tmp_path: Path) -> None:
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite3'}") as collector:
        port = httpx.URL(collector.url).port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\n")  # and no more
        status, _, body = await read_answer(reader)
        assert status == 408 and json.loads(body)["error"] == "request timeout"
        writer.close()

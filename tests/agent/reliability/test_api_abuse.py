"""Hostile or sloppy HTTP clients against a real agent on loopback: oversized bodies get 413 with the
JSON error body before they are buffered, ffmpeg's endless progress upload still streams, a body
without any progress block is a 400, and the bearer scheme is matched case-insensitively (RFC 9110)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.http.limits import MAX_BODY_BYTES
from agent.models import ErrorBody
from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings

TOKEN = "tok_ReliabilityTestToken_1234567890"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[AgentServer]:
    settings = make_settings(
        tmp_path,
        API__TOKEN=TOKEN,
        SOURCES__OBS__ENABLED="false",
        SOURCES__SYSTEM__ENABLED="false",
        SOURCES__NETWORK__ENABLED="false",
    )
    server = AgentServer(settings, Agent(settings))  # the ffmpeg source only: it takes the progress upload
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def client_of(server: AgentServer, scheme: str = "Bearer") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"{scheme} {TOKEN}"}, timeout=30)


@pytest.mark.parametrize("path", ["/api/v1/preflight", "/api/v1/bandwidth-test", "/api/v1/obs/reconnect"])
async def test_a_declared_50_mb_body_is_refused_with_413_and_the_json_error_body_before_it_is_sent(
    server: AgentServer, path: str
) -> None:
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n".encode()
            + b'{"x": "'
            + b"a" * 65536
        )
        await writer.drain()
        async with asyncio.timeout(10):  # answered without waiting for the other 50 MB
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.read()
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413 ")
    error = ErrorBody.model_validate_json(body)
    assert error.error == "payload too large" and str(MAX_BODY_BYTES) in (error.detail or "")
    async with client_of(server) as client:
        assert (await client.get("/api/v1/health")).status_code == 200  # and it goes on serving


async def test_a_chunked_body_is_cut_off_at_the_limit(server: AgentServer) -> None:
    async def endless() -> AsyncIterator[bytes]:
        yield b'{"target": "'
        for _ in range(1000):  # up to 16 MB, far more than the limit
            yield b"a" * 16384

    async with client_of(server) as client:
        response = await client.post(
            "/api/v1/preflight", content=endless(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert ErrorBody.model_validate(response.json()).error == "payload too large"


async def test_ffmpeg_progress_stays_streamed_past_the_body_limit(server: AgentServer) -> None:
    block = b"frame=30\nfps=30.0\ndrop_frames=0\nspeed=1x\nprogress=continue\n"
    count = 3 * MAX_BODY_BYTES // len(block)

    async def progress() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield block
        yield b"frame=31\nprogress=end\n"

    async with client_of(server) as client:
        response = await client.post("/api/v1/ffmpeg/progress", content=progress())
    assert response.status_code == 200, response.text
    assert response.json() == {"blocks": count + 1, "ended": True}


@pytest.mark.parametrize("body", [b"hello world", b"", b"frame=1\nfps=30\n"])
async def test_a_progress_body_without_any_progress_block_is_a_400(server: AgentServer, body: bytes) -> None:
    async with client_of(server) as client:
        response = await client.post("/api/v1/ffmpeg/progress", content=body)
    assert response.status_code == 400
    assert "progress" in (ErrorBody.model_validate(response.json()).detail or "")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(server: AgentServer, scheme: str) -> None:
    async with client_of(server, scheme) as client:
        assert (await client.get("/api/v1/health")).status_code == 200


@pytest.mark.parametrize("header", ["Basic " + TOKEN, "Bearer wrong", "bearer", TOKEN, "Bearer " + TOKEN + "x"])
async def test_anything_but_the_bearer_token_is_refused(server: AgentServer, header: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": header}) as client:
        response = await client.get("/api/v1/health")
    assert response.status_code == 401
    assert ErrorBody.model_validate(response.json()).error == "unauthorized"

"""Test helpers: a relay on a free loopback port in front of a given ingest, always closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from agent.relay.relay import Relay
from agent.relay.settings import RelaySettings
from agent.runtime import Agent
from tests.agent.helpers import make_settings


@contextlib.asynccontextmanager
async def running_relay(ingest_url: str, **settings: object) -> AsyncIterator[Relay]:
    """Disconnect protection is off (hold_s = 0) unless a test asks for it: a lost encoder ends the stream."""
    relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0", "hold_s": 0, **settings}), [ingest_url])
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


def relay_only_agent(tmp_path: Path, **environ: str) -> Agent:
    """An agent whose only source is the relay (the others off), sampling every 0.2 s."""
    settings = make_settings(
        tmp_path,
        sources__system__enabled="false",
        sources__network__enabled="false",
        sources__obs__enabled="false",
        sources__ffmpeg__enabled="false",
        sampling__interval_s="0.2",
        **environ,
    )
    return Agent(settings)


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `timeout_s` saying what we waited for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)

"""Runs an agent and its HTTP API on one asyncio loop: in the foreground (`streamhealth agent`) or
embedded in another program (the TUI). Refuses to expose the API beyond loopback without a token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import uvicorn

from agent import os_features
from agent.api.app import create_app
from agent.beat import next_beat
from agent.errors import BindRefused, PortBusy
from agent.http.server import uvicorn_config
from agent.runtime import Agent
from agent.settings import Settings

log = logging.getLogger(__name__)

STUCK_CLIENT_GRACE_S = 0.5


def check_bind(settings: Settings) -> None:
    if not settings.api.is_loopback and settings.api.token is None:
        raise BindRefused(
            f"refusing to serve the API on {settings.api.host}: that address is reachable from other machines "
            "and api.token is not set. Set api.token (or STREAMHEALTH_API__TOKEN) to a long random string, "
            "or keep api.host = 127.0.0.1."
        )


def advertised_url(host: str, port: int) -> str:
    """Where other machines reach the API: a wildcard bind is named by this host's name (for discovery)."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname() or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


class AgentServer:
    """An `Agent` plus a uvicorn server for its API; `start()` returns once the port is listening."""

    def __init__(self, settings: Settings, agent: Agent | None = None) -> None:
        check_bind(settings)
        self.settings = settings
        self.agent = agent or Agent(settings)
        config = uvicorn_config(create_app(self.agent), host=settings.api.host, port=settings.api.port)
        self._server = _EmbeddedUvicorn(config)
        self._serve_task: asyncio.Task[None] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.settings.api.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        # The port first: a second agent on a busy port must stop before it starts a run (and its log).
        listening = self._listen()
        await self.agent.start()
        self._serve_task = asyncio.create_task(self._serve(listening), name="api")
        while not self._server.started:
            if self._serve_task.done():
                await self.agent.stop("the API could not start")
                raise OSError(f"the API on {self.settings.api.host}:{self.settings.api.port} did not start")
            await asyncio.sleep(0.02)
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.api.port
        os_features.release_freed_memory()  # start-up's garbage, not the agent's working set
        self.agent.api_url = advertised_url(self.settings.api.host, self.port)

    def _listen(self) -> socket.socket:
        host, port = self.settings.api.host, self.settings.api.port
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            listening = socket.socket(family, kind, proto)
        except OSError as exc:
            raise BindRefused(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check api.host") from None
        try:
            if os.name != "nt":  # on Windows SO_REUSEADDR would let two agents share the port
                listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind(address)
            listening.listen(128)
        except OSError as exc:
            listening.close()
            raise PortBusy(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(is another agent running? set api.port to a free port)"
            ) from None
        listening.setblocking(False)
        return listening

    async def _serve(self, listening: socket.socket) -> None:
        try:
            await self._server.serve(sockets=[listening])
        except SystemExit:  # uvicorn exits the process when it cannot bind; we report it instead
            log.debug("uvicorn gave up starting")

    async def stop(self, reason: str = "stopped") -> None:
        self.agent.bus.close()  # event streams end first, or the server would wait for them forever
        self._server.request_exit()
        if self._serve_task is not None:
            # An event-stream client that stopped reading keeps its response stuck in a write: it can
            # never receive the end of its stream. After a short grace, cut such connections off, so
            # the server stops at once and quietly instead of cancelling them after its own timeout.
            done, _ = await asyncio.wait({self._serve_task}, timeout=STUCK_CLIENT_GRACE_S)
            if not done:
                stuck = list(self._server.server_state.connections)
                if stuck:
                    log.info("closing %d connection(s) of clients that stopped reading", len(stuck))
                for connection in stuck:
                    transport = getattr(connection, "transport", None)
                    if transport is not None:
                        transport.abort()
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
        await self.agent.stop(reason)


class _ConnectionsThatWake(set[Any]):
    """uvicorn's set of open connections (each protocol adds itself when a client connects), which also
    tells the server that a client came: the Date header is made fresh for it at once, and the server
    keeps it fresh while anyone is connected."""

    def __init__(self, on_connect: Callable[[], None]) -> None:
        super().__init__()
        self._on_connect = on_connect

    def add(self, connection: Any) -> None:
        self._on_connect()
        super().add(connection)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs the agent owns SIGINT / SIGTERM, so a
    signal stops the agent cleanly (last log line written) instead of being re-raised at the process.

    And without its ten wake-ups a second: uvicorn wakes that often to refresh its Date header and to
    check for exit. Here the header is refreshed when a client connects and once a second (on the
    agent's beat, agent/beat.py) while any client is connected; with nobody connected the server sleeps
    until a client comes or `request_exit` is called."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake = asyncio.Event()
        self._date_refreshed_at = -float("inf")
        self.server_state.connections = _ConnectionsThatWake(self._client_connected)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._refresh_date_header()
        while not self.should_exit:
            self._wake.clear()
            deadline = next_beat(loop.time(), 1.0) if self.server_state.connections else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()
            if self.server_state.connections:
                self._refresh_date_header()

    def _client_connected(self) -> None:
        if time.monotonic() - self._date_refreshed_at >= 1.0:
            self._refresh_date_header()
        self._wake.set()

    def _refresh_date_header(self) -> None:
        """What uvicorn's own `on_tick` does each second (the header has a 1 s resolution)."""
        self._date_refreshed_at = time.monotonic()
        date = [(b"date", formatdate(time.time(), usegmt=True).encode())] if self.config.date_header else []
        self.server_state.default_headers = date + self.config.encoded_headers

    def request_exit(self) -> None:
        self.should_exit = True
        self._wake.set()

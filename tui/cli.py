"""`streamhealth` with no command, or `streamhealth tui`: the terminal UI.

Connects to the agent at `--agent URL`, else at the configured API address; when nothing answers
there (and no `--agent` was given) it starts an agent embedded in this process and says so in the
header. The agent package never imports this one: we hand our command to `agent.cli.main`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

import httpx

from agent import cli as agent_cli
from agent.errors import PortBusy, StreamHealthError
from agent.redact import register_secret
from agent.server import AgentServer
from agent.settings import Settings

log = logging.getLogger(__name__)

HELP = "open the terminal UI (the default): live dashboard, alerts, preflight, history"
PROBE_TIMEOUT_S = 1.5
COLLECTOR_TOKEN_ENV = "STREAMHEALTH_COLLECTOR_TOKEN"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("tui", parents=[common], help=HELP, description=HELP + ".")
    add_tui_options(parser)
    parser.set_defaults(command=run)


def add_tui_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agent",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="agent to watch, e.g. http://studio-pc:8765 (default: the configured api.host:api.port, "
        "or an agent started inside the TUI when none runs there)",
    )
    parser.add_argument(
        "--token", metavar="TOKEN", default=argparse.SUPPRESS, help="the agent's api.token (default: api.token)"
    )
    parser.add_argument(
        "--collector",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"watch every agent shipping to this collector (the Fleet screen), e.g. http://collector:8766; "
        f"its read token comes from ${COLLECTOR_TOKEN_ENV}",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    collector = getattr(args, "collector", None)
    if collector is not None:
        return asyncio.run(run_fleet(collector, os.environ.get(COLLECTOR_TOKEN_ENV) or None))
    return asyncio.run(run_tui(settings, agent_url=getattr(args, "agent", None), token=getattr(args, "token", None)))


def configured_url(settings: Settings) -> str:
    host = settings.api.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"  # listening everywhere: reach it on this machine by loopback
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.api.port}"


async def agent_answers(url: str, token: str | None) -> bool:
    """True when an agent answers at `url` (even with 401: then it is there, our token is the problem)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, headers=headers) as http:
            response = await http.get(f"{url.rstrip('/')}/api/v1/health")
    except httpx.HTTPError:
        return False
    return response.status_code in (200, 401)


async def start_embedded(settings: Settings) -> AgentServer:
    """An agent in this process; on the configured port, or any free one if that is taken."""
    try:
        server = AgentServer(settings)
        await server.start()
        return server
    except (PortBusy, OSError):
        log.info("port %s is busy; the embedded agent takes a free one", settings.api.port)
    fallback = settings.model_copy(update={"api": settings.api.model_copy(update={"port": 0})})
    server = AgentServer(fallback)
    await server.start()
    return server


async def run_tui(settings: Settings, *, agent_url: str | None = None, token: str | None = None) -> int:
    from tui.app import build_app
    from tui.client import AgentClient

    if token:
        register_secret(token)
    token = token or (settings.api.token.get_secret_value() if settings.api.token else None)
    # The TUI owns the terminal: log records would scribble over it (and stay behind after exit),
    # so only errors go through, and only until the app is gone.
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.ERROR)
    embedded: AgentServer | None = None
    try:
        if agent_url is not None:
            url, label = agent_url.rstrip("/"), f"agent {agent_url.rstrip('/')}"
        else:
            url = configured_url(settings)
            if await agent_answers(url, token):
                label = f"agent {url}"
            else:
                embedded = await start_embedded(settings)
                url, label = embedded.url, f"EMBEDDED agent {embedded.url}"
        root.setLevel(logging.CRITICAL)
        app = build_app(AgentClient(url, token), agent_label=label)
        await app.run_async()
    finally:
        root.setLevel(previous_level)
        if embedded is not None:
            with contextlib.suppress(StreamHealthError, OSError):
                await embedded.stop("the TUI closed")
    return app.return_code or 0


async def run_fleet(collector_url: str, token: str | None) -> int:
    """The Fleet screen: every agent that ships to the collector, and each one's Live screen through it."""
    from tui.fleet_app import build_fleet_app
    from tui.fleet_client import FleetClient

    if token:
        register_secret(token)
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.CRITICAL)  # the TUI owns the terminal
    try:
        app = build_fleet_app(FleetClient(collector_url, token))
        await app.run_async()
    finally:
        root.setLevel(previous_level)
    return app.return_code or 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `streamhealth` console script: the TUI by default, every agent command as well."""
    from collector import cli as collector_cli  # argparse only; the collector loads when its command runs
    from tui import web

    return agent_cli.main(argv, extra_commands=[sys.modules[__name__], web, collector_cli], default_command=run)


if __name__ == "__main__":
    sys.exit(main())

"""`streamhealth agent`: run the agent in the foreground until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from agent import __version__
from agent.relay.event_loop import loop_factory
from agent.server import AgentServer
from agent.settings import Settings

log = logging.getLogger("streamhealth")

HELP = "run the agent in the foreground: sources, health log and HTTP API (Ctrl+C stops it)"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("agent", parents=[common], help=HELP, description=HELP + ".")
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # uvloop while the relay runs (agent/relay/event_loop.py says why); asyncio.run's loop otherwise.
    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        return runner.run(serve_forever(settings))


async def serve_forever(settings: Settings) -> int:
    server = AgentServer(settings)
    await server.start()
    stopped = asyncio.Event()
    reason = "stopped"
    loop = asyncio.get_running_loop()

    def request_stop(signal_name: str) -> None:
        nonlocal reason
        reason = f"received {signal_name}"
        stopped.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers: there Ctrl+C arrives as KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, request_stop, signum.name)
    writer = server.agent.log_writer
    print(
        f"streamhealth agent {__version__} listening on {server.url}"
        f" (health log: {writer.path if writer else 'off'}); Ctrl+C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stopped.wait()
    finally:
        log.info("stopping: %s", reason)
        await server.stop(reason)
    return 0

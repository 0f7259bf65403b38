"""`streamhealth run -- ffmpeg ...`: run ffmpeg and watch its progress (see agent/ffmpeg/wrapper.py)."""

from __future__ import annotations

import argparse
import asyncio

from agent.settings import Settings

HELP = "run ffmpeg with -progress added and watch it (streamhealth run -- ffmpeg ARGS...)"
DESCRIPTION = (
    "Runs ffmpeg with everything you give it, adding only '-progress tcp://127.0.0.1:PORT -stats_period 1'; "
    "its exit code, output and signals pass through. The progress is relayed to the agent at "
    "api.host/api.port whenever one runs (also if it starts later or restarts); while none does (or with "
    "--no-agent) this command prints a line when ffmpeg falls behind (speed under 1x) or drops frames. "
    "A summary ends the run."
)


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("run", parents=[common], help=HELP, description=DESCRIPTION)
    parser.add_argument("--no-agent", action="store_true", help="do not relay to an agent; only watch here")
    parser.add_argument("ffmpeg_command", nargs=argparse.REMAINDER, metavar="-- ffmpeg ARGS", help="the command")
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from agent.ffmpeg.wrapper import run_wrapped  # only this command needs it, not every agent process

    command = list(args.ffmpeg_command)
    if command[:1] == ["--"]:
        command = command[1:]
    return asyncio.run(run_wrapped(command, settings, use_agent=not args.no_agent))

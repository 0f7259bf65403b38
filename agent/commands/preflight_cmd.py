"""`streamhealth preflight`: the go / no-go check before a stream, in the terminal.

Starts a temporary agent in this process (its sources, no HTTP API), watches it for the window while
the bandwidth test runs, and shows a live checklist; then the verdict and the recommended settings.
`--json` prints only the report. Exit code: 0 GO, 1 GO_WITH_WARNINGS, 2 NO_GO, 3 when the check
itself could not run. The Rich terminal code lives in preflight_terminal.py, imported on use, so the
agent process (which builds this parser too) never loads it.
"""

from __future__ import annotations

import argparse

from agent.platforms import PLATFORM_NAMES
from agent.preflight import DEFAULT_DURATION_S
from agent.settings import Settings

HELP = "go / no-go check before a stream: machine, network, bandwidth and encoder against the platform"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("preflight", parents=[common], help=HELP, description=HELP + ".")
    parser.add_argument("--platform", choices=PLATFORM_NAMES, help="default: the `platform` setting")
    parser.add_argument(
        "--duration", type=float, default=DEFAULT_DURATION_S, metavar="S", help="seconds to watch (default %(default)g)"
    )
    parser.add_argument("--json", action="store_true", help="print only the report as JSON")
    parser.add_argument("--no-bandwidth", action="store_true", help="skip the bandwidth test")
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from agent.commands import preflight_terminal

    return preflight_terminal.run(args, settings)

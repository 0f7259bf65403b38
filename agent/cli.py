"""The `streamhealth` entry point: parses arguments, loads settings, hands over to a command. No logic.

User errors (bad config, refused bind, busy port) print one clear message and exit 2 (1 for a
runtime failure); tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from agent import __version__
from agent.commands import (
    agent_cmd,
    bandwidth_cmd,
    bandwidth_server_cmd,
    logs_cmd,
    preflight_cmd,
    relay_cmd,
    rules_cmd,
    run_cmd,
)
from agent.configuration import load_configuration
from agent.errors import BindRefused, ConfigError, StreamHealthError
from agent.redact import RedactingFilter, redact
from agent.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

CommandRun = Callable[[argparse.Namespace, Settings], int]


class CommandModule(Protocol):
    """A subcommand: a module with these two functions (see agent/commands/agent_cmd.py)."""

    def add_parser(
        self,
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        common: argparse.ArgumentParser,
    ) -> None: ...

    def run(self, args: argparse.Namespace, settings: Settings) -> int: ...


COMMAND_MODULES: list[CommandModule] = [
    agent_cmd,
    bandwidth_cmd,
    bandwidth_server_cmd,
    logs_cmd,
    preflight_cmd,
    relay_cmd,
    rules_cmd,
    run_cmd,
]


def _common_options(*, for_subcommands: bool) -> argparse.ArgumentParser:
    """Options every command takes. Subcommands get them without defaults, so that
    `streamhealth --config X agent` keeps the X given before the command name."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if for_subcommands else None)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="settings file (TOML); default: $STREAMHEALTH_CONFIG, else ~/.config/streamhealth/config.toml if present",
    )
    common.add_argument("--version", action="version", version=f"streamhealth {__version__}")
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors")
    if not for_subcommands:
        common.set_defaults(config=None, verbose=False, quiet=False)
    return common


def build_parser(command_modules: Sequence[CommandModule] = ()) -> argparse.ArgumentParser:
    common = _common_options(for_subcommands=True)
    parser = argparse.ArgumentParser(
        prog="streamhealth",
        parents=[_common_options(for_subcommands=False)],
        description="Stream health monitor: measures your uplink, CPU, encoder and ingest before and during a stream.",
        epilog="Without a command, opens the terminal UI (with an agent embedded if none is running).",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in [*COMMAND_MODULES, *command_modules]:
        module.add_parser(subparsers, common)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    for noisy in ("uvicorn.error", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.DEBUG)


def main(
    argv: Sequence[str] | None = None,
    *,
    extra_commands: Sequence[CommandModule] = (),
    default_command: CommandRun | None = None,
) -> int:
    """Run `streamhealth`. The TUI package calls this with its own command and makes it the default
    (the agent never imports the TUI); on its own, the default is the agent in the foreground."""
    parser = build_parser(extra_commands)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    command: CommandRun = getattr(args, "command", None) or default_command or agent_cmd.run
    # A command with a settings section of its own (the collector) reads that only: the agent's
    # configuration and rules are neither read nor checked, so a broken agent config does not stop it.
    standalone: Callable[[argparse.Namespace], int] | None = getattr(args, "standalone", None)
    try:
        if standalone is not None:
            return int(standalone(args))
        settings = load_configuration(args.config)
        return int(command(args, settings))
    except (ConfigError, BindRefused) as exc:  # the user's setup: fix it and start again
        print(f"streamhealth: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (StreamHealthError, OSError) as exc:
        print(f"streamhealth: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

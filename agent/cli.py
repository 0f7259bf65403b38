"""The `streamhealth` entry point: parses arguments, loads settings, hands over to a command. No logic.

User errors (bad config, refused bind, busy port) print one clear message and exit 2 (1 for a
runtime failure); tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.commands import agent_cmd
from agent.errors import BindRefused, ConfigError, StreamHealthError
from agent.redact import RedactingFilter, redact
from agent.settings import load_settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

COMMAND_MODULES = [agent_cmd]


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
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
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="streamhealth",
        parents=[common],
        description="Stream health monitor: measures your uplink, CPU, encoder and ingest before and during a stream.",
        epilog="Without a command, opens the terminal UI (with an agent embedded if none is running).",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMAND_MODULES:
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


def _default_command() -> object:
    """The TUI when it is installed, else the agent in the foreground."""
    try:
        from tui import cli_command  # type: ignore[attr-defined]
    except ImportError:
        return agent_cmd.run
    return cli_command.run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    command = getattr(args, "command", None) or _default_command()
    try:
        settings = load_settings(args.config)
        return int(command(args, settings))  # type: ignore[operator]
    except ConfigError as exc:
        print(f"streamhealth: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BindRefused as exc:
        print(f"streamhealth: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StreamHealthError as exc:
        print(f"streamhealth: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"streamhealth: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

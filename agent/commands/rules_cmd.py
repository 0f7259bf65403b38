"""`streamhealth rules test LOG [--expect FILE]`: replay a health log (or a recorded timeline, the same format)
through the rules in your settings and print when each alert was raised, changed and cleared; with an
expectations file, check them like `promtool test rules` (exit 1 when one fails). No agent needs to run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from agent.errors import ConfigError
from agent.logs.reader import ReadProblem, read_records
from agent.models import HealthSnapshot, TickRecord
from agent.rules.engine import RuleEngine
from agent.rules.replay import Replay, RulesTest, check, describe, replay
from agent.settings import Settings, read_toml

HELP = "test alert rules: replay a health log through them, print when each alert was raised and cleared"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("rules", parents=[common], help=HELP, description=HELP + ".")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="rules_action", required=True)
    test = actions.add_parser(
        "test",
        parents=[common],
        help="replay health log files (or recorded timelines) through the rules",
        description="Replays the snapshots of health log files (oldest first) through the rules of your settings "
        "(rules.file, rules.overrides, rules.disabled) and prints each alert's lifecycle. Times are seconds "
        "since the first snapshot.",
    )
    test.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="health log files (.jsonl), in order")
    test.add_argument("--rules", type=Path, metavar="FILE", help="use this rules file instead of rules.file")
    test.add_argument(
        "--expect",
        type=Path,
        metavar="FILE",
        help="a TOML file of [[expect]] tables (alert, raised_between_s, cleared_by_s, quiet_between_s, ...)",
    )
    test.add_argument("--json", action="store_true", help="print the events as JSON")
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.rules is not None:
        settings = settings.model_copy(update={"rules": settings.rules.model_copy(update={"file": args.rules})})
    expectations = _load_expectations(args.expect) if args.expect is not None else None
    engine = RuleEngine.from_settings(settings)
    problems: list[ReadProblem] = []
    result = replay(_snapshots(args.logs, problems), engine)
    if result.ticks == 0:
        raise ConfigError(f"no snapshots (tick records) in {', '.join(str(p) for p in args.logs)}")
    if args.json:
        print(json.dumps({"duration_s": round(result.duration_s, 3), "events": describe(result)}, indent=2))
    else:
        _print(result, args.logs)
    for problem in problems:
        print(f"skipped {problem.path}:{problem.line_number}: {problem.reason}", file=sys.stderr)
    if expectations is None:
        return EXIT_OK
    failures = check(result, expectations, {rule.name: rule.kind for rule in engine.rules})
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print(f"PASSED: {len(expectations.expect)} expectation(s)")
    return EXIT_FAILED if failures else EXIT_OK


def _snapshots(paths: list[Path], problems: list[ReadProblem]) -> list[HealthSnapshot]:
    snapshots: list[HealthSnapshot] = []
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file (give health log files, e.g. from logs.dir)", file=str(path))
        snapshots.extend(record.snapshot for record in read_records(path, problems) if isinstance(record, TickRecord))
    return snapshots


def _load_expectations(path: Path) -> RulesTest:
    try:
        return RulesTest.model_validate(read_toml(path))
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            reason = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
            reasons.append(f"{field}: {reason}" if field else reason)
        raise ConfigError(f"{path}: {'; '.join(reasons)}", file=str(path)) from None


def _print(result: Replay, paths: list[Path]) -> None:
    print(f"{', '.join(str(p) for p in paths)}: {result.ticks} snapshots over {result.duration_s:.1f} s")
    if not result.events:
        print("no alert was raised")
    for event in result.events:
        if event.change == "cleared":
            print(f"{event.at_s:8.1f} s  cleared   {'':8}  {event.alert.id}")
        else:
            print(
                f"{event.at_s:8.1f} s  {event.change:<8}  {event.alert.severity:<8}  {event.alert.id}: {event.alert.message}"
            )
    still = [alert.id for alert in result.active_at_end]
    if still:
        print(f"active at the end: {', '.join(still)}")

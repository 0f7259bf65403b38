"""`streamhealth logs list | show ID | summary ID | export ID`: stream sessions from the health logs.

Reads the log folder directly (no agent needs to run): a table for people by default, `--json` for
scripts. An unknown or ambiguous id is a usage error (exit 2) that says how to find the right one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.logs.session_export import export_csv, export_jsonl
from agent.logs.session_index import SessionIndex
from agent.models import SessionDetail, SessionList, SessionSummary
from agent.settings import Settings

HELP = "stream sessions from the health logs: list, show ID, summary ID, export ID"
EXIT_OK, EXIT_USAGE = 0, 2
WIDTH_WHEN_PIPED = 200


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "logs",
        parents=[common],
        help=HELP,
        description="Stream sessions (one live stream each) from the health logs in logs.dir. "
        "An ID may be shortened to any unique prefix, e.g. its start time 20261125T2000.",
    )
    parser.add_argument("--dir", type=Path, metavar="PATH", help="read this log folder instead of logs.dir")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="logs_action", required=True)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")
    actions.add_parser("list", parents=[as_json], help="sessions, newest first")
    for name, what in (("show", "a session's summary and alert timeline"), ("summary", "a session's summary")):
        action = actions.add_parser(name, parents=[as_json], help=what)
        action.add_argument("session_id", metavar="ID")
    export = actions.add_parser("export", help="a session's records: every line (jsonl) or a row per tick (csv)")
    export.add_argument("session_id", metavar="ID")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output")
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console

    from agent.commands import logs_render

    directory: Path = args.dir or settings.logs.dir
    index = SessionIndex(directory)
    # Piped to a file or a pager, a table keeps its columns instead of squeezing into 80.
    console = Console(width=None if sys.stdout.isatty() else WIDTH_WHEN_PIPED)
    if args.logs_action == "list":
        sessions = index.sessions()
        if args.json:
            print(SessionList(sessions=sessions).model_dump_json(indent=2))
        else:
            logs_render.print_list(console, sessions, directory)
        return EXIT_OK
    detail = _find(index, args.session_id, directory)
    if detail is None:
        return EXIT_USAGE
    if args.logs_action == "export":
        return _export(index, detail, args.format, args.output)
    if args.json:
        shown = detail if args.logs_action == "show" else _without_timeline(detail)
        print(shown.model_dump_json(indent=2))
    else:
        logs_render.print_summary(console, detail, timeline=args.logs_action == "show")
    return EXIT_OK


def _find(index: SessionIndex, session_id: str, directory: Path) -> SessionDetail | None:
    detail = index.session(session_id)
    if detail is not None:
        return detail
    candidates = index.matching_ids(session_id) if session_id else []
    if len(candidates) > 1:
        shown = ", ".join(candidates[:5]) + (" ..." if len(candidates) > 5 else "")
        print(
            f"streamhealth logs: {session_id!r} matches {len(candidates)} sessions ({shown}); give more of the id",
            file=sys.stderr,
        )
    else:
        print(
            f"streamhealth logs: no session {session_id!r} in {directory}; "
            "`streamhealth logs list` shows the sessions there (--dir reads another folder)",
            file=sys.stderr,
        )
    return None


def _export(index: SessionIndex, detail: SessionDetail, fmt: str, output: Path | None) -> int:
    paths = index.files_of(detail.session_id)
    exporter = export_csv if fmt == "csv" else export_jsonl
    if output is None:
        exporter(paths, detail.session_id, sys.stdout)
        return EXIT_OK
    with output.open("w", encoding="utf-8", newline="") as out:
        count = exporter(paths, detail.session_id, out)
    print(
        f"wrote {count} {'rows' if fmt == 'csv' else 'lines'} of session {detail.session_id} to {output}",
        file=sys.stderr,
    )
    return EXIT_OK


def _without_timeline(detail: SessionDetail) -> SessionSummary:
    return SessionSummary.model_validate(detail.model_dump(exclude={"alerts_timeline", "alerts_truncated"}))

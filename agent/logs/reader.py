"""Reading health logs back: tolerant of a torn last line and of records from newer agents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from agent.logs.writer import LOG_SUFFIX
from agent.models import LOG_RECORD, LogRecord


@dataclass(frozen=True)
class ReadProblem:
    path: Path
    line_number: int
    reason: str


def read_records(path: Path, problems: list[ReadProblem] | None = None) -> Iterator[LogRecord]:
    """Records of one log file in order. Unreadable lines (a torn last line after `kill -9`, a record
    type this version does not know) are skipped and, if `problems` is given, listed there."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield LOG_RECORD.validate_python(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                if problems is not None:
                    torn = not line.endswith("\n")
                    reason = "torn last line (the agent stopped mid-write)" if torn else f"unreadable: {exc}"
                    problems.append(ReadProblem(path, number, reason[:200]))


def run_files(directory: Path) -> list[Path]:
    """Log files in `directory`, oldest run first, parts of a run in order."""

    def order(path: Path) -> tuple[str, int]:
        stem = path.name.removesuffix(LOG_SUFFIX)
        base, _, part = stem.partition(".part")
        return base, int(part) if part.isdigit() else 1

    return sorted(directory.glob(f"streamhealth-*{LOG_SUFFIX}"), key=order)

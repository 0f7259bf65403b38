"""The health log writer: JSON Lines, one file per agent run, flushed line by line, rotated by size.

Each line is written with one `write` and flushed, so `kill -9` loses at most the line being written
(the reader skips a torn last line). Lines arrive redacted: the writer is a sink of `Agent.emit`,
which redacts every record once for all sinks (the event stream gets the same line), so redacting here
again would only double the cost of every tick.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

log = logging.getLogger(__name__)

LOG_SUFFIX = ".jsonl"


def run_file_stem(started_at: datetime, pid: int) -> str:
    return f"streamhealth-{started_at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{pid}"


class RetentionGuard(Protocol):
    """Asked before retention deletes a log file (the shipper: not before the collector has it)."""

    def may_delete(self, path: Path, total_bytes: int) -> bool: ...


class HealthLogWriter:
    """Appends lines to `<dir>/<run>.jsonl`, continuing in `<run>.partN.jsonl` past `max_bytes`."""

    def __init__(self, directory: Path, *, started_at: datetime, pid: int, max_bytes: int, keep_bytes: int) -> None:
        self.directory = directory
        self.stem = run_file_stem(started_at, pid)
        self.max_bytes = max_bytes
        self.keep_bytes = keep_bytes
        self.part = 1
        self._handle: TextIO | None = None
        self._size = 0
        self.failed: str | None = None
        self.retention_guard: RetentionGuard | None = None

    @property
    def path(self) -> Path:
        suffix = "" if self.part == 1 else f".part{self.part}"
        return self.directory / f"{self.stem}{suffix}{LOG_SUFFIX}"

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_current()
        self._enforce_retention()

    def _open_current(self) -> None:
        self._handle = self.path.open("a", encoding="utf-8", newline="\n")
        self._size = self._handle.tell()

    def write_line(self, line_json: str) -> None:
        """Write one record; a full disk is reported once and retried on the next line, never raised."""
        if self._handle is None:
            return
        line = line_json + "\n"
        try:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._handle.write(line)
            self._handle.flush()
            self._size += len(line.encode("utf-8")) if not line.isascii() else len(line)
            self.failed = None
        except OSError as exc:
            if self.failed is None:
                log.error("cannot write the health log %s: %s (is the disk full?)", self.path, exc.strerror)
            self.failed = f"cannot write {self.path}: {exc.strerror}"

    def _rotate(self) -> None:
        assert self._handle is not None
        self._handle.close()
        self.part += 1
        self._open_current()
        self._enforce_retention()

    def _enforce_retention(self) -> None:
        """Delete the oldest logs (never the current one) once all of them pass `keep_bytes`."""
        if not self.keep_bytes:
            return
        files = sorted(self.directory.glob(f"streamhealth-*{LOG_SUFFIX}"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self.keep_bytes:
                break
            if path == self.path:
                continue
            if self.retention_guard is not None and not self.retention_guard.may_delete(path, total):
                continue
            try:
                size = path.stat().st_size
                path.unlink()
                total -= size
            except OSError as exc:
                log.warning("cannot delete old health log %s: %s", path, exc.strerror)

    def close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            except OSError:
                pass  # closing anyway; the lines already written stay written
            self._handle.close()
            self._handle = None

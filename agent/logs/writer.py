"""The health log writer: JSON Lines, one file per agent run, written line by line, rotated by size.

Each line goes to the file in one unbuffered `os.write` (append mode), so `kill -9` loses at most the
line being written. When a write fails (disk full) the file is truncated back to the end of the last
whole line, so the log never holds a torn line in its middle; the records that could not be written
are counted, the failure shows in `status()` (the snapshot's `logging` block and an alert), and the
first line written once there is room again is a `log_gap` record saying how many were lost.
The run's current file is held under an OS lock, so no agent's retention deletes it (agent/logs/locks.py).
Lines arrive redacted: the writer is a sink of `Agent.emit`, which redacts every record once for all
sinks, so redacting here again would only double the cost of every tick.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from agent.logs.locks import delete_unless_held, lock_held_file
from agent.models import LogGap, LoggingStatus, utc_now

log = logging.getLogger(__name__)

LOG_SUFFIX = ".jsonl"
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)


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
        self._fd: int | None = None
        self._size = 0  # bytes up to the end of the last whole line written
        self.failed: str | None = None
        self.failing_since: datetime | None = None
        self.lost_records = 0
        self.retention_guard: RetentionGuard | None = None
        # The agent's seq stamp (agent/ship/sequence.py), so the writer's own log_gap line is shipped too.
        self.stamp_line: Callable[[str], str] = lambda line: line

    @property
    def path(self) -> Path:
        suffix = "" if self.part == 1 else f".part{self.part}"
        return self.directory / f"{self.stem}{suffix}{LOG_SUFFIX}"

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_current()
        self._enforce_retention()

    def _open_current(self) -> None:
        fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        lock_held_file(fd)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def status(self) -> LoggingStatus:
        if self._fd is None:
            return LoggingStatus(state="off")
        if self.failed is None:
            return LoggingStatus(state="ok", path=str(self.path))
        return LoggingStatus(
            state="failing",
            path=str(self.path),
            error=self.failed,
            failing_since=self.failing_since,
            lost_records=self.lost_records,
        )

    def write_line(self, line_json: str) -> None:
        """Write one record; a full disk is counted and reported, never raised, never a torn line."""
        if self._fd is None:
            return
        data = (line_json + "\n").encode("utf-8")
        try:
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            if self.failed is not None:
                self._write_gap_record()
            self._write_whole(data)
        except OSError as exc:
            self._note_failure(exc)

    def _write_gap_record(self) -> None:
        assert self.failing_since is not None and self.failed is not None
        gap = LogGap(at=utc_now(), failing_since=self.failing_since, lost_records=self.lost_records, error=self.failed)
        self._write_whole((self.stamp_line(gap.model_dump_json()) + "\n").encode("utf-8"))
        log.warning(
            "the health log %s is written again; %d records were lost since %s",
            self.path,
            self.lost_records,
            self.failing_since.isoformat(timespec="seconds"),
        )
        self.failed = self.failing_since = None
        self.lost_records = 0

    def _write_whole(self, data: bytes) -> None:
        """All of `data`, or nothing: a short or failed write is cut back to the last whole line."""
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                count = os.write(self._fd, view[written:])
                if count == 0:
                    raise OSError(28, os.strerror(28))  # ENOSPC: a write that makes no progress
                written += count
        except OSError:
            if written:
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError as truncate_error:
                    log.error("cannot cut a torn line off %s: %s", self.path, truncate_error.strerror)
            raise
        self._size += written

    def _note_failure(self, exc: OSError) -> None:
        self.lost_records += 1
        if self.failed is None:
            reason = exc.strerror or str(exc)
            log.error("cannot write the health log %s: %s; records are lost until it can be written", self.path, reason)
            self.failed = f"cannot write {self.path}: {reason} (is the disk full? free space or set logs.dir)"
            self.failing_since = utc_now()

    def _rotate(self) -> None:
        assert self._fd is not None
        os.close(self._fd)  # releases the lock: a finished part may be deleted by retention
        self._fd = None
        self.part += 1
        self._open_current()
        self._enforce_retention()

    def _enforce_retention(self) -> None:
        """Delete the oldest logs once all of them pass `keep_bytes`; never a file a live run holds
        (this run's current file, or another agent's on the same folder)."""
        if not self.keep_bytes:
            return
        sized: list[tuple[Path, float, int]] = []
        for path in self.directory.glob(f"streamhealth-*{LOG_SUFFIX}"):
            try:
                stat = path.stat()
            except OSError:
                continue  # deleted meanwhile, by another agent's retention
            sized.append((path, stat.st_mtime, stat.st_size))
        sized.sort(key=lambda item: item[1])
        total = sum(size for _, _, size in sized)
        for path, _, size in sized:
            if total <= self.keep_bytes:
                break
            if path == self.path:
                continue
            if self.retention_guard is not None and not self.retention_guard.may_delete(path, total):
                continue
            try:
                if delete_unless_held(path):
                    total -= size
            except FileNotFoundError:
                total -= size
            except OSError as exc:
                log.warning("cannot delete old health log %s: %s", path, exc.strerror)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # closing anyway; the lines already written stay written
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

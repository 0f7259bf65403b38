"""Stream sessions read back from the health logs: what `streamhealth logs` and GET /api/v1/sessions show.

A session lives in one agent run (its log file and `.partN` continuations). Listing reads only the
session_* records (a cheap substring test skips the ticks), so it stays fast for long logs. A session
the agent never summarised (killed, crashed, power lost) is rebuilt by replaying its tagged ticks and
alerts through the same accumulator the agent uses; its summary says so.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from pydantic import ValidationError

from agent.logs.reader import run_files
from agent.logs.sessions import run_id_of
from agent.models import (
    AlertRecord,
    AlertTimelineEntry,
    SessionDetail,
    SessionEnded,
    SessionEndReason,
    SessionStarted,
    SessionSummary,
    TickRecord,
)
from agent.sessions.summary import SessionAccumulator

MAX_TIMELINE_ENTRIES = 1000
# Session records and the session_id tag sit at the start of a line; ticks are long, so look only here.
_HEAD_BYTES = 256
_SESSION_RECORD = b'"type":"session_'
_READ_CHUNK_BYTES = 1 << 20
# A run whose agent still exists and wrote within this long is taken as running (for the CLI).
RECENT_RECORD_S = 120.0
UNEXPECTED_STOP = (
    "the agent stopped without ending the session (killed, crashed or the machine lost power); rebuilt from the log"
)


@dataclass
class _SessionRecords:
    started: SessionStarted | None = None
    ended: SessionEnded | None = None
    summary: SessionSummary | None = None


@dataclass
class _RunScan:
    """What one run's files said so far: (inode, offset) per file and the session records found."""

    files: dict[Path, tuple[int, int]] = field(default_factory=dict)
    sessions: dict[str, _SessionRecords] = field(default_factory=dict)
    stopped: bool = False
    last_record_at: datetime | None = None
    unreadable_lines: int = 0
    rebuilt: dict[str, tuple[int, SessionDetail]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(offset for _, offset in self.files.values())

    def read_line(self, line: bytes) -> None:
        head = line[:_HEAD_BYTES]
        if b'"type":"run_stopped"' in head:
            self.stopped = True
        if _SESSION_RECORD not in head:
            return
        try:
            record = json.loads(line)
            kind = record.get("type")
            if kind == "session_started":
                started = SessionStarted.model_validate(record)
                self._of(started.session_id).started = started
                self._note(started.at)
            elif kind == "session_ended":
                ended = SessionEnded.model_validate(record)
                self._of(ended.session_id).ended = ended
                self._note(ended.at)
            elif kind == "session_summary":
                summary = SessionSummary.model_validate(record)
                self._of(summary.session_id).summary = summary
        except (ValueError, ValidationError, AttributeError):
            self.unreadable_lines += 1

    def _of(self, session_id: str) -> _SessionRecords:
        return self.sessions.setdefault(session_id, _SessionRecords())

    def _note(self, at: datetime) -> None:
        if self.last_record_at is None or at > self.last_record_at:
            self.last_record_at = at


class SessionIndex:
    """Sessions of one log folder, cached per run and refreshed incrementally. Thread-safe (the API
    reads it from a worker thread)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._runs: dict[str, _RunScan] = {}
        self._lock = threading.Lock()

    def sessions(self, current_run_id: str | None = None, live: SessionSummary | None = None) -> list[SessionSummary]:
        """Every session in the folder, newest first. `live` is the answering agent's live session (its
        own summary so far is cheaper and fresher than replaying the log); other unfinished sessions are
        rebuilt from their records once and cached until their files grow."""
        with self._lock:
            self._refresh()
            found: list[SessionSummary] = []
            for run_id, scan in self._runs.items():
                for session_id, records in scan.sessions.items():
                    if records.started is None:
                        continue
                    if records.summary is not None:
                        found.append(records.summary)
                    elif live is not None and live.session_id == session_id:
                        found.append(live)
                    else:
                        found.append(self._detail(run_id, scan, session_id, current_run_id))
        summaries = [SessionSummary.model_validate(summary.model_dump()) for summary in found]
        return sorted(summaries, key=lambda summary: summary.started_at, reverse=True)

    def session(
        self, session_id: str, current_run_id: str | None = None, live: SessionSummary | None = None
    ) -> SessionDetail | None:
        """One session with its alert timeline. A unique prefix of the id is enough (ids are long);
        the id is only compared with ids found in the logs, never used as a path."""
        with self._lock:
            self._refresh()
            matches = [
                (run_id, scan, found_id)
                for run_id, scan in self._runs.items()
                for found_id, records in scan.sessions.items()
                if records.started is not None and found_id.startswith(session_id)
            ]
            exact = [match for match in matches if match[2] == session_id]
            chosen = exact or matches
            if len(chosen) != 1:
                return None
            run_id, scan, found_id = chosen[0]
            return self._detail(run_id, scan, found_id, current_run_id, live)

    def matching_ids(self, prefix: str) -> list[str]:
        with self._lock:
            self._refresh()
            return sorted(sid for scan in self._runs.values() for sid in scan.sessions if sid.startswith(prefix))

    def files_of(self, session_id: str) -> list[Path]:
        """The log files of the run holding this session, in order (for export)."""
        with self._lock:
            self._refresh()
            for scan in self._runs.values():
                if session_id in scan.sessions:
                    return list(scan.files)
        return []

    # --- scanning --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        grouped: dict[str, list[Path]] = {}
        for path in run_files(self.directory) if self.directory.is_dir() else []:
            grouped.setdefault(run_id_of(path), []).append(path)
        for gone in set(self._runs) - set(grouped):  # deleted by retention
            del self._runs[gone]
        for run_id, paths in grouped.items():
            scan = self._runs.get(run_id)
            if scan is None or not _continues(scan, paths):
                scan = self._runs[run_id] = _RunScan()
            for path in paths:
                _read_new_lines(scan, path)

    def _detail(
        self,
        run_id: str,
        scan: _RunScan,
        session_id: str,
        current_run_id: str | None,
        live: SessionSummary | None = None,
    ) -> SessionDetail:
        records = scan.sessions[session_id]
        assert records.started is not None
        cached = scan.rebuilt.get(session_id)
        if cached is not None and cached[0] == scan.size:
            return cached[1]
        running = _run_is_running(run_id, scan, current_run_id)
        use_live = live if live is not None and live.session_id == session_id else None
        detail = _rebuild(records, list(scan.files), running=running, stopped=scan.stopped, live=use_live)
        scan.rebuilt[session_id] = (scan.size, detail)
        return detail


def _continues(scan: _RunScan, paths: list[Path]) -> bool:
    """The cached scan is still a prefix of these files (none replaced, truncated or deleted)."""
    for path, (inode, offset) in scan.files.items():
        try:
            stat = path.stat()
        except OSError:
            return False
        if stat.st_ino != inode or stat.st_size < offset or path not in paths:
            return False
    return True


def _read_new_lines(scan: _RunScan, path: Path) -> None:
    try:
        stat = path.stat()
        inode, offset = scan.files.get(path, (stat.st_ino, 0))
        if stat.st_size == offset:
            scan.files[path] = (inode, offset)
            return
        with path.open("rb") as handle:
            handle.seek(offset)
            pending = b""
            while chunk := handle.read(_READ_CHUNK_BYTES):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()  # an incomplete line: the writer may still be on it
                for line in lines:
                    offset += len(line) + 1
                    if line.strip():
                        scan.read_line(line)
        scan.files[path] = (inode, offset)
    except OSError:
        return  # keep what was read; the next request tries again


def _run_is_running(run_id: str, scan: _RunScan, current_run_id: str | None) -> bool:
    if scan.stopped:
        return False
    if current_run_id is not None:
        return run_id == current_run_id
    # No agent answered for us (the CLI): the run's process must exist and have written lately.
    pid_text = run_id.rpartition("-")[2]
    if not pid_text.isdigit() or not psutil.pid_exists(int(pid_text)):
        return False
    newest = max((path.stat().st_mtime for path in scan.files if path.exists()), default=0.0)
    return datetime.now(UTC) - datetime.fromtimestamp(newest, UTC) < timedelta(seconds=RECENT_RECORD_S)


def session_lines(paths: list[Path], session_id: str) -> Iterator[bytes]:
    """The lines of one session as written (already redacted): its own records and every tagged one."""
    tag = b'"session_id":"' + session_id.encode("ascii", "replace") + b'"'
    for path in paths:
        try:
            with path.open("rb") as handle:
                for line in handle:
                    if line.endswith(b"\n") and tag in line[:_HEAD_BYTES]:
                        yield line.rstrip(b"\n")
        except OSError:
            continue


def _rebuild(
    records: _SessionRecords, paths: list[Path], *, running: bool, stopped: bool, live: SessionSummary | None = None
) -> SessionDetail:
    """The session's summary (the agent's own if it wrote one) with its alert timeline from the log."""
    started = records.started
    assert started is not None
    known = records.summary or live
    accumulator = None if known is not None else SessionAccumulator(started)
    timeline: deque[AlertTimelineEntry] = deque(maxlen=MAX_TIMELINE_ENTRIES)
    alert_total = 0
    for line in session_lines(paths, started.session_id):
        head = line[:_HEAD_BYTES]
        try:
            if b'"type":"alert"' in head:
                alert = AlertRecord.model_validate_json(line)
                alert_total += 1
                timeline.append(_timeline_entry(alert))
                if accumulator is not None:
                    accumulator.add_alert(alert.change)
            elif accumulator is not None and b'"type":"tick"' in head:
                accumulator.add_tick(TickRecord.model_validate_json(line).snapshot)
        except ValidationError:
            continue  # a torn or foreign line: the summary is built from what can be read
    if known is not None:
        summary = known
    else:
        assert accumulator is not None
        if running:
            summary = accumulator.summary(ended_at=None, reason=None, reconstructed=True)
        else:
            reason: SessionEndReason = "agent_stopped" if stopped else "agent_stopped_unexpectedly"
            detail = "" if stopped else UNEXPECTED_STOP
            ended_at = records.ended.at if records.ended is not None else accumulator.last_live_at
            summary = accumulator.summary(ended_at=ended_at, reason=reason, detail=detail, reconstructed=True)
    return SessionDetail(
        **summary.model_dump(), alerts_timeline=list(timeline), alerts_truncated=alert_total > len(timeline)
    )


def _timeline_entry(record: AlertRecord) -> AlertTimelineEntry:
    alert = record.change.alert
    return AlertTimelineEntry(
        at=record.at,
        change=record.change.change,
        alert_id=alert.id,
        kind=alert.kind,
        severity=alert.severity,
        message=alert.message,
    )

"""Summaries of past runs from the health logs, for `GET /api/v1/runs` and the TUI's History screen.

Logs can be tens of megabytes, and the current run's file grows every second, so files are read
incrementally: each file keeps the byte offset read so far and what was found up to there, and a
request only reads what was appended since (a file that shrank or was replaced is read again).
Tick lines are only JSON-decoded for three fields; only run and alert records go through the models.
Not for serving raw log lines: that is the log files' job.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from agent.logs.reader import run_files
from agent.logs.writer import LOG_SUFFIX
from agent.models import (
    AlertRecord,
    AlertTimelineEntry,
    OverallState,
    RunDetail,
    RunStarted,
    RunStopped,
    RunSummary,
)

MAX_TIMELINE_ENTRIES = 1000
_STATE_RANK: dict[str, int] = {"starting": -1, "ok": 0, "warning": 1, "critical": 2}
_READ_CHUNK_BYTES = 1 << 20


def run_id_of(path: Path) -> str:
    """`streamhealth-20261125T080000Z-42.part3.jsonl` -> `streamhealth-20261125T080000Z-42`."""
    return path.name.removesuffix(LOG_SUFFIX).partition(".part")[0]


@dataclass
class _FileScan:
    """What one log file said up to `offset` (always the end of a complete line)."""

    inode: int = -1
    offset: int = 0
    started: RunStarted | None = None
    stopped: RunStopped | None = None
    last_record_at: datetime | None = None
    uptime_s: float | None = None  # the run's monotonic age at its last tick or stop
    worst: OverallState = "ok"
    ticks: int = 0
    alerts_raised: int = 0
    critical_raised: int = 0
    unreadable_lines: int = 0
    timeline: deque[AlertTimelineEntry] = field(default_factory=lambda: deque(maxlen=MAX_TIMELINE_ENTRIES))
    timeline_total: int = 0

    def worsen(self, state: str) -> None:
        if _STATE_RANK.get(state, 0) > _STATE_RANK[self.worst]:
            self.worst = state  # type: ignore[assignment]  # checked against _STATE_RANK's keys

    def note_time(self, at: datetime | None) -> None:
        if at is not None and (self.last_record_at is None or at > self.last_record_at):
            self.last_record_at = at

    def note_uptime(self, uptime_s: object) -> None:
        if isinstance(uptime_s, int | float) and (self.uptime_s is None or uptime_s > self.uptime_s):
            self.uptime_s = float(uptime_s)

    def read_line(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            self.unreadable_lines += 1
            return
        if not isinstance(record, dict):
            self.unreadable_lines += 1
            return
        try:
            self._apply(record)
        except (ValidationError, ValueError, TypeError, KeyError):
            self.unreadable_lines += 1

    def _apply(self, record: dict[str, object]) -> None:
        kind = record.get("type")
        if kind == "tick":
            snapshot = record["snapshot"]
            if not isinstance(snapshot, dict):
                raise TypeError("tick without a snapshot")
            self.ticks += 1
            self.worsen(str(snapshot.get("overall", "ok")))
            taken_at = snapshot.get("taken_at")
            if isinstance(taken_at, str):
                self.note_time(datetime.fromisoformat(taken_at))
            agent = snapshot.get("agent")
            if isinstance(agent, dict):
                self.note_uptime(agent.get("uptime_s"))
        elif kind == "alert":
            alert_record = AlertRecord.model_validate(record)
            alert = alert_record.change.alert
            if alert_record.change.change == "raised":
                self.alerts_raised += 1
                self.critical_raised += alert.severity == "critical"
            if alert_record.change.change != "cleared":
                self.worsen(alert.severity)
            self.timeline.append(
                AlertTimelineEntry(
                    at=alert_record.at,
                    change=alert_record.change.change,
                    alert_id=alert.id,
                    kind=alert.kind,
                    severity=alert.severity,
                    message=alert.message,
                )
            )
            self.timeline_total += 1
            self.note_time(alert_record.at)
        elif kind == "run_started":
            self.started = RunStarted.model_validate(record)
            self.note_time(self.started.at)
        elif kind == "run_stopped":
            self.stopped = RunStopped.model_validate(record)
            self.note_time(self.stopped.at)
            self.note_uptime(self.stopped.uptime_s)
        # Other record types (source_state, job_finished, newer ones) do not change a run's summary.


class RunIndex:
    """Run summaries for one log folder, cached per file and refreshed incrementally. Thread-safe:
    the API calls it from a worker thread so reading a large log never blocks the event loop."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._scans: dict[Path, _FileScan] = {}
        self._lock = threading.Lock()

    def runs(self, current_run_id: str | None = None) -> list[RunSummary]:
        """Every run in the folder, newest first."""
        with self._lock:
            grouped = self._refresh()
        summaries = [_summary(run_id, scans, current_run_id) for run_id, scans in grouped.items()]
        return sorted(summaries, key=lambda run: run.run_id, reverse=True)

    def run(self, run_id: str, current_run_id: str | None = None) -> RunDetail | None:
        """One run with its alert timeline; None for an id that is not a run in this folder.

        The id is only ever compared with the names found in the folder, never joined into a path."""
        with self._lock:
            grouped = self._refresh()
        scans = grouped.get(run_id)
        if scans is None:
            return None
        entries: list[AlertTimelineEntry] = []
        truncated = False
        for scan in scans:
            entries.extend(scan.timeline)
            truncated = truncated or scan.timeline_total > len(scan.timeline)
        if len(entries) > MAX_TIMELINE_ENTRIES:
            entries, truncated = entries[-MAX_TIMELINE_ENTRIES:], True
        summary = _summary(run_id, scans, current_run_id)
        return RunDetail(**summary.model_dump(), alerts=entries, alerts_truncated=truncated)

    def _refresh(self) -> dict[str, list[_FileScan]]:
        grouped: dict[str, list[_FileScan]] = {}
        seen: set[Path] = set()
        paths = run_files(self.directory) if self.directory.is_dir() else []
        for path in paths:
            scan = self._scan(path)
            if scan is None:
                continue
            seen.add(path)
            grouped.setdefault(run_id_of(path), []).append(scan)
        for gone in set(self._scans) - seen:  # deleted by retention
            del self._scans[gone]
        return grouped

    def _scan(self, path: Path) -> _FileScan | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        scan = self._scans.get(path)
        if scan is None or scan.inode != stat.st_ino or stat.st_size < scan.offset:
            scan = self._scans[path] = _FileScan(inode=stat.st_ino)
        if stat.st_size == scan.offset:
            return scan
        try:
            with path.open("rb") as handle:
                handle.seek(scan.offset)
                pending = b""
                while chunk := handle.read(_READ_CHUNK_BYTES):
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()  # an incomplete line: the writer may still be on it
                    for line in lines:
                        scan.offset += len(line) + 1
                        if line.strip():
                            scan.read_line(line)
        except OSError:
            return scan  # keep what was read; the next request tries again
        return scan


def _duration_s(scans: list[_FileScan], started: RunStarted | None, end: datetime | None) -> float | None:
    """The run's monotonic age at its last record (agents since this version log it); older logs only
    have wall times, which a clock set back or forward makes wrong."""
    stopped = next((scan.stopped for scan in reversed(scans) if scan.stopped is not None), None)
    uptimes = [scan.uptime_s for scan in scans if scan.uptime_s is not None]
    if stopped is not None and stopped.uptime_s is not None:
        return round(stopped.uptime_s, 3)
    if stopped is None and uptimes:  # ended abruptly: its age at its last tick
        return round(max(uptimes), 3)
    return round((end - started.at).total_seconds(), 3) if started and end else None


def _summary(run_id: str, scans: list[_FileScan], current_run_id: str | None) -> RunSummary:
    started = next((scan.started for scan in scans if scan.started is not None), None)
    stopped = next((scan.stopped for scan in reversed(scans) if scan.stopped is not None), None)
    times = [scan.last_record_at for scan in scans if scan.last_record_at is not None]
    last_at = max(times) if times else None
    end = stopped.at if stopped is not None else last_at
    worst: OverallState = "ok"
    for scan in scans:
        if _STATE_RANK[scan.worst] > _STATE_RANK[worst]:
            worst = scan.worst
    return RunSummary(
        run_id=run_id,
        started_at=started.at if started else None,
        stopped_at=stopped.at if stopped else None,
        stop_reason=stopped.reason if stopped else None,
        last_record_at=last_at,
        duration_s=_duration_s(scans, started, end),
        current=run_id == current_run_id,
        platform=started.agent.platform if started else None,
        agent_version=started.agent.version if started else None,
        worst_state=worst,
        ticks=sum(scan.ticks for scan in scans),
        alerts_raised=sum(scan.alerts_raised for scan in scans),
        critical_raised=sum(scan.critical_raised for scan in scans),
        files=len(scans),
        unreadable_lines=sum(scan.unreadable_lines for scan in scans),
    )

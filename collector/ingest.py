"""Reading one ingest batch: gunzip with limits, validate every line, and note what the batch says.

Sans-I/O: bytes in, a `ParsedBatch` or a `BatchError` (a 4xx naming the line and the reason) out. A batch
is taken whole or not at all, so a malformed line stores nothing. Records of any type are accepted: the
collector needs only `seq`, `type`, a time (`at` or a tick's `snapshot.taken_at`) and, when present,
`session_id`; it keeps each line exactly as the agent wrote it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.models import record_time
from collector.models import AlertBrief, SnapshotBrief

MAX_COMPRESSED_BYTES = 16 * 1024 * 1024
MAX_BATCH_BYTES = 64 * 1024 * 1024  # after gunzip: a gzip bomb stops here
MAX_LINES = 10_000
STATE_RANK = {"ok": 0, "warning": 1, "critical": 2}
RANK_STATE = {rank: state for state, rank in STATE_RANK.items()}


class BatchError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class IngestRecord:
    seq: int
    type: str
    at: datetime | None
    session_id: str | None
    line: str


@dataclass
class SessionTouch:
    session_id: str
    first_at: datetime | None = None
    last_at: datetime | None = None
    worst_rank: int | None = None
    platform: str | None = None
    summary_line: str | None = None
    records: int = 0


@dataclass
class MinuteRollup:
    """One agent-minute of ticks, summed so rollups of several batches add up (means computed on read)."""

    minute: datetime
    ticks: int = 0
    worst_rank: int | None = None
    cpu_sum: float = 0.0
    cpu_count: int = 0
    bitrate_sum: float = 0.0
    bitrate_count: int = 0


@dataclass
class ParsedBatch:
    records: list[IngestRecord] = field(default_factory=list)
    latest_json: str | None = None  # SnapshotBrief of the batch's last tick
    alerts_json: str | None = None  # its active alerts
    latest_at: datetime | None = None
    session_parts: dict[int, SessionTouch] = field(default_factory=dict)  # seq -> what that record says
    tick_parts: dict[int, MinuteRollup] = field(default_factory=dict)  # seq -> that tick as a rollup of one

    def minutes_of(self, inserted: set[int]) -> list[MinuteRollup]:
        """The per-minute rollups of the ticks just inserted (a resent tick is not counted twice)."""
        merged: dict[datetime, MinuteRollup] = {}
        for seq, part in self.tick_parts.items():
            if seq not in inserted:
                continue
            into = merged.setdefault(part.minute, MinuteRollup(part.minute))
            into.ticks += 1
            if part.worst_rank is not None:
                into.worst_rank = max(into.worst_rank or 0, part.worst_rank)
            into.cpu_sum += part.cpu_sum
            into.cpu_count += part.cpu_count
            into.bitrate_sum += part.bitrate_sum
            into.bitrate_count += part.bitrate_count
        return list(merged.values())

    @property
    def last_seq(self) -> int | None:
        return max((record.seq for record in self.records), default=None)

    def sessions_of(self, inserted: set[int]) -> list[SessionTouch]:
        """What the records just inserted (not the duplicates) say about their sessions, merged per session."""
        merged: dict[str, SessionTouch] = {}
        for seq, part in self.session_parts.items():
            if seq not in inserted:
                continue
            touch = merged.setdefault(part.session_id, SessionTouch(part.session_id))
            touch.records += 1
            if part.first_at is not None:
                touch.first_at = min(touch.first_at, part.first_at) if touch.first_at else part.first_at
                touch.last_at = max(touch.last_at, part.first_at) if touch.last_at else part.first_at
            if part.worst_rank is not None:
                touch.worst_rank = max(touch.worst_rank or 0, part.worst_rank)
            touch.platform = part.platform or touch.platform
            touch.summary_line = part.summary_line or touch.summary_line
        return list(merged.values())


def gunzip(body: bytes, content_encoding: str | None) -> bytes:
    if len(body) > MAX_COMPRESSED_BYTES:
        raise BatchError(413, "batch too large", f"at most {MAX_COMPRESSED_BYTES} bytes per batch")
    if (content_encoding or "identity").lower() == "identity":
        raw = body
    elif content_encoding.lower() == "gzip":  # type: ignore[union-attr]
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(body, MAX_BATCH_BYTES + 1)
        except zlib.error as exc:
            raise BatchError(400, "bad gzip", f"the body is not valid gzip: {exc}") from exc
        if len(raw) > MAX_BATCH_BYTES or inflater.unconsumed_tail:
            raise BatchError(413, "batch too large", f"at most {MAX_BATCH_BYTES} bytes per batch once gunzipped")
        if not inflater.eof:
            raise BatchError(400, "bad gzip", "the gzip stream is truncated")
    else:
        raise BatchError(415, "unsupported encoding", "send NDJSON, gzip-compressed (Content-Encoding: gzip)")
    return raw


def parse_batch(raw: bytes) -> ParsedBatch:
    batch = ParsedBatch()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise BatchError(413, "batch too large", f"at most {MAX_LINES} lines per batch")
    last_tick: dict[str, Any] | None = None
    for number, raw_line in enumerate(lines, start=1):
        record = _record(number, raw_line)
        batch.records.append(record.stored)
        if record.stored.type == "tick":
            last_tick = record.body
            rollup = _tick_part(record.stored, record.body)
            if rollup is not None:
                batch.tick_parts[record.stored.seq] = rollup
        if record.stored.session_id is not None:
            batch.session_parts[record.stored.seq] = _session_part(record.stored, record.body)
    if last_tick is not None:
        _note_latest(batch, last_tick)
    return batch


@dataclass
class _Parsed:
    stored: IngestRecord
    body: dict[str, Any]


def _record(number: int, raw_line: bytes) -> _Parsed:
    def bad(why: str) -> BatchError:
        return BatchError(400, "malformed batch", f"line {number}: {why}; nothing of this batch was stored")

    try:
        text = raw_line.decode("utf-8")
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise bad("not a JSON object")
    seq, kind, session_id = body.get("seq"), body.get("type"), body.get("session_id")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**63:
        raise bad("no integer seq >= 1")
    if not isinstance(kind, str) or not 0 < len(kind) <= 100:
        raise bad("no type")
    if session_id is not None and (not isinstance(session_id, str) or not 0 < len(session_id) <= 200):
        raise bad("session_id must be a short string")
    at_text = record_time(body)
    at = None
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError as exc:
            raise bad(f"unreadable time {at_text[:40]!r}") from exc
        if at.tzinfo is None:
            raise bad("its time has no time zone")
    return _Parsed(IngestRecord(seq, kind, at, session_id, text), body)


def _session_part(record: IngestRecord, body: dict[str, Any]) -> SessionTouch:
    assert record.session_id is not None
    part = SessionTouch(record.session_id, first_at=record.at, last_at=record.at, records=1)
    snapshot = body.get("snapshot")
    if isinstance(snapshot, dict):
        part.worst_rank = STATE_RANK.get(str(snapshot.get("overall")))
        platform = _get(snapshot, "agent", "platform")
        part.platform = platform if isinstance(platform, str) else None
    platform = body.get("platform")  # session_started and session_summary say it
    if isinstance(platform, str):
        part.platform = platform
    if record.type.endswith("summary"):
        part.summary_line = record.line
    return part


def _tick_part(record: IngestRecord, body: dict[str, Any]) -> MinuteRollup | None:
    if record.at is None:
        return None
    part = MinuteRollup(record.at.replace(second=0, microsecond=0), ticks=1)
    snapshot = body.get("snapshot") or {}
    part.worst_rank = STATE_RANK.get(str(snapshot.get("overall")))
    cpu = _get(snapshot, "system", "cpu_usage_ratio")
    if isinstance(cpu, int | float) and not isinstance(cpu, bool):
        part.cpu_sum, part.cpu_count = float(cpu), 1
    bitrate = _get(snapshot, "obs", "output_bitrate_bps")
    if isinstance(bitrate, int | float) and not isinstance(bitrate, bool):
        part.bitrate_sum, part.bitrate_count = float(bitrate), 1
    return part


def _note_latest(batch: ParsedBatch, tick: dict[str, Any]) -> None:
    snapshot = tick.get("snapshot")
    if not isinstance(snapshot, dict):
        return
    try:
        brief = SnapshotBrief(
            taken_at=snapshot.get("taken_at"),
            overall=snapshot.get("overall"),
            platform=_get(snapshot, "agent", "platform"),
            streaming=_get(snapshot, "obs", "streaming"),
            output_bitrate_bps=_get(snapshot, "obs", "output_bitrate_bps"),
            cpu_ratio=_get(snapshot, "system", "cpu_usage_ratio"),
        )
    except ValueError:
        return  # a tick shaped unlike ours: stored all the same, only not summarised
    batch.latest_json = brief.model_dump_json()
    batch.latest_at = brief.taken_at
    alerts = []
    for alert in snapshot.get("alerts") or []:
        if isinstance(alert, dict):
            try:
                alerts.append(AlertBrief.model_validate(alert))
            except ValueError:
                continue  # an alert this collector cannot read stays in the record itself
    batch.alerts_json = json.dumps([alert.model_dump(mode="json") for alert in alerts])


def _get(node: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node

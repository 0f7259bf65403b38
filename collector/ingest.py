"""Reading one ingest batch: gunzip with limits, validate every line, and note what the batch says.

Sans-I/O: bytes in, a `ParsedBatch` or a `BatchError` (a 4xx naming the line and the reason) out. A batch
is taken whole or not at all, so a malformed line stores nothing. Records of any type are accepted: the
collector needs only `seq`, `type`, a time (`at` or a tick's `snapshot.taken_at`) and, when present,
`session_id`; it keeps each line exactly as the agent wrote it. A line the stores or the read API could
not hold or serve (a NUL in a stored column, a lone surrogate, nesting past MAX_JSON_DEPTH, a number
JSON cannot carry) is refused here, for that batch alone, before it reaches a transaction shared with others.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.models import record_time
from collector.models import AlertBrief, SnapshotBrief

MAX_COMPRESSED_BYTES = 16 * 1024 * 1024
MAX_BATCH_BYTES = 64 * 1024 * 1024  # after gunzip: a gzip bomb stops here
MAX_LINES = 10_000
MAX_JSON_DEPTH = 64  # the agent's records nest 6 deep; the read API parses lines again, deeper in its stack
MAX_TEXT_CHARS = 200  # type, session_id, platform: short names, not documents
_LONE_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
# A float that overflows to infinity needs a 3-digit exponent or a run of 300 digits (cheap to look for).
_HUGE_NUMBER_HINT = re.compile(rb"[eE]\+?0*[1-9][0-9]{2}|[0-9]{300}")
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
        body = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise bad(f"nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise bad("not a JSON object")
    problem = _unservable(raw_line, body)
    if problem is not None:
        raise bad(problem)
    seq, kind, session_id = body.get("seq"), body.get("type"), body.get("session_id")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**63:
        raise bad("no integer seq >= 1")
    if not isinstance(kind, str) or not 0 < len(kind) <= 100 or "\x00" in kind:
        raise bad("no type (a short string without NUL)")
    if session_id is not None and not _storable(session_id):
        raise bad(f"session_id must be a string of 1 to {MAX_TEXT_CHARS} characters without NUL")
    for name, platform in (("platform", body.get("platform")), ("snapshot.agent.platform", _platform_of(body))):
        if isinstance(platform, str) and not _storable(platform):
            raise bad(f"{name} must be 1 to {MAX_TEXT_CHARS} characters without NUL")
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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _platform_of(body: dict[str, Any]) -> Any:
    return _get(body, "snapshot", "agent", "platform")


def _storable(text: object) -> bool:
    return isinstance(text, str) and 0 < len(text) <= MAX_TEXT_CHARS and "\x00" not in text


def _unservable(raw_line: bytes, body: dict[str, Any]) -> str | None:
    """Why the read API could not serve this line again (None: it can). The walk runs only on a hint."""
    if raw_line.count(b"{") + raw_line.count(b"[") > MAX_JSON_DEPTH and _deeper_than(body, MAX_JSON_DEPTH):
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    if _LONE_SURROGATE_HINT.search(raw_line):
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "a lone UTF-16 surrogate (\\ud800-\\udfff) that is no character"
    if _HUGE_NUMBER_HINT.search(raw_line) and not _all_finite(body):
        return "a number too large for a float"
    return None


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _all_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return False
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def _session_part(record: IngestRecord, body: dict[str, Any]) -> SessionTouch:
    assert record.session_id is not None
    part = SessionTouch(record.session_id, first_at=record.at, last_at=record.at, records=1)
    snapshot = body.get("snapshot")
    if isinstance(snapshot, dict):
        part.worst_rank = STATE_RANK.get(str(snapshot.get("overall")))
        platform = _get(snapshot, "agent", "platform")
        part.platform = platform if _storable(platform) else None
    platform = body.get("platform")  # session_started and session_summary say it
    if _storable(platform):
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

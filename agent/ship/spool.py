"""The health log as the shipping spool: reading complete lines after the acknowledged position.

No second copy of the records is kept: the shipper reads the JSONL files the writer appends to, from a
position (file, byte offset) that moves only after the collector acknowledged a batch. Files are taken in
the order of their first `seq` (a restart within the same second must not reorder them). Only complete
lines (ending in a newline) are read; a line that is not a JSON object with an integer `seq` (a torn line
from a crash, a line from an agent older than shipping) is skipped and counted, never sent.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.logs.writer import LOG_SUFFIX

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4 * 1024 * 1024
TAIL_BYTES = 256 * 1024
_SEQ_PREFIX = re.compile(rb'^\{"seq":(\d+),')
_NO_SEQ = -1  # files of older agents (no seq at all) go first: they are the oldest
_NOT_YET = 1 << 62  # a file with no complete line yet is the one being written: it goes last


@dataclass(frozen=True)
class Position:
    file: str
    offset: int


@dataclass
class Batch:
    lines: list[bytes] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    end: Position | None = None
    consumed_lines: int = 0  # lines passed over, shipped or skipped (for the waiting count)
    skipped: int = 0
    first_record_at: str | None = None


def line_seq(line: bytes) -> int | None:
    """The seq of a complete, valid log line, else None (torn, not JSON, no seq)."""
    match = _SEQ_PREFIX.match(line)
    if match is None:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("seq") != int(match.group(1)):
        return None
    return int(match.group(1))


class LogSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._first_seq: dict[str, int] = {}

    def files(self) -> list[Path]:
        """The log files, oldest first by their first seq."""
        keyed = []
        for path in self.directory.glob(f"streamhealth-*{LOG_SUFFIX}"):
            keyed.append((self._order_key(path), path.name, path))
        keyed.sort()
        return [path for _, _, path in keyed]

    def _order_key(self, path: Path) -> int:
        known = self._first_seq.get(path.name)
        if known is not None:
            return known
        try:
            with path.open("rb") as handle:
                first = handle.readline(1024 * 1024)
        except OSError:
            return _NOT_YET
        if not first.endswith(b"\n"):
            return _NOT_YET
        match = _SEQ_PREFIX.match(first)
        key = int(match.group(1)) if match else _NO_SEQ
        self._first_seq[path.name] = key
        return key

    def order_key(self, name: str) -> int:
        return self._order_key(self.directory / name)

    def read_batch(self, start: Position | None, after_seq: int | None, max_lines: int) -> Batch:
        """Up to `max_lines` complete lines with seq > after_seq, from `start` on (None: the oldest file)."""
        files = self.files()
        names = [path.name for path in files]
        batch = Batch(end=start)
        if start is not None and start.file in names:
            index, offset = names.index(start.file), start.offset
        else:
            index, offset = 0, 0  # the file was deleted (hard cap) or no cursor yet: seq decides what is new
        while index < len(files) and len(batch.lines) < max_lines:
            path = files[index]
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    data = handle.read(READ_CHUNK_BYTES)
                    at_eof = len(data) < READ_CHUNK_BYTES
            except FileNotFoundError:
                index, offset = index + 1, 0
                continue
            consumed = self._take_lines(batch, data, path.name, offset, after_seq, max_lines)
            offset += consumed
            if len(batch.lines) >= max_lines or not at_eof:
                break
            if index == len(files) - 1:
                break  # the file being written: wait for more
            if consumed < len(data):
                batch.skipped += 1  # a torn last line of a finished file (the agent was killed mid-write)
                log.warning("skipping the torn last line of %s", path.name)
            index, offset = index + 1, 0
            batch.end = Position(files[index].name, 0)
        return batch

    def _take_lines(
        self, batch: Batch, data: bytes, name: str, offset: int, after_seq: int | None, max_lines: int
    ) -> int:
        consumed = 0
        while len(batch.lines) < max_lines:
            newline = data.find(b"\n", consumed)
            if newline < 0:
                break
            line = data[consumed : newline + 1]
            consumed = newline + 1
            batch.consumed_lines += 1
            batch.end = Position(name, offset + consumed)
            seq = line_seq(line[:-1])
            if seq is None:
                if line.strip():
                    batch.skipped += 1
                continue
            if after_seq is not None and seq <= after_seq:
                continue  # already acknowledged (a cursor rebuilt from the collector's last_seq)
            if batch.first_seq is None:
                batch.first_seq = seq
                batch.first_record_at = _record_at(line)
            batch.last_seq = seq
            batch.lines.append(line)
        return consumed

    def count_lines(self, start: Position | None) -> int:
        """Complete lines from `start` to the end of the newest file."""
        total = 0
        files = self.files()
        names = [path.name for path in files]
        index, offset = (names.index(start.file), start.offset) if start and start.file in names else (0, 0)
        for path in files[index:]:
            total += self.count_lines_in(path, offset)
            offset = 0
        return total

    @staticmethod
    def count_lines_in(path: Path, start: int) -> int:
        total = 0
        try:
            with path.open("rb") as handle:
                handle.seek(start)
                while chunk := handle.read(READ_CHUNK_BYTES):
                    total += chunk.count(b"\n")
        except FileNotFoundError:
            pass
        return total

    def last_seq_of(self, path: Path) -> int | None:
        """The seq of the file's last complete line (None: it has no line with a seq)."""
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - TAIL_BYTES))
                tail = handle.read()
        except OSError:
            return None
        for line in reversed(tail.split(b"\n")):
            seq = line_seq(line)
            if seq is not None:
                return seq
        return None

    def forget(self, name: str) -> None:
        self._first_seq.pop(name, None)


def _record_at(line: bytes) -> str | None:
    from agent.models.shipping import record_time

    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record_time(record) if isinstance(record, dict) else None

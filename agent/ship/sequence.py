"""The agent's identity and the `seq` stamped on every record: unique per agent, monotonic across restarts.

`(agent_id, seq)` is what the collector stores once, so a seq must never be given to two different lines.
The identity file (`.streamhealth-agent.json` in the log folder) holds the agent id and a lease: seqs up to
`seq_reserved` may be used before the file is written again, so the disk is touched once per
`LEASE` records, not per record. A restart (even after `kill -9`) starts at the lease's end and past the
highest seq still in the logs, so it never reuses one. One agent owns a log folder at a time (a lock);
a second agent on the same folder writes its log without seqs and says why.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import IO

from agent.ship.durable import read_json, write_json_atomically
from agent.ship.spool import LogSpool

log = logging.getLogger(__name__)

IDENTITY_FILE = ".streamhealth-agent.json"
LOCK_FILE = ".streamhealth-agent.lock"
LEASE = 10_000


class FolderLock:
    """An exclusive lock on the log folder for this process's lifetime (fcntl; none on Windows)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._handle: IO[bytes] | None = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:
            return True  # Windows: one agent per log folder is then the user's promise (docs/collector.md)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the flock
            self._handle = None


class Sequencer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / IDENTITY_FILE
        self.agent_id = ""
        self.next_seq = 1
        self._reserved = 0

    def open(self) -> None:
        """Load (or create) the identity and take a new lease past every seq already used."""
        data = read_json(self.path) or {}
        agent_id = data.get("agent_id")
        reserved = data.get("seq_reserved")
        if not isinstance(agent_id, str) or not agent_id:
            agent_id = uuid.uuid4().hex
            log.info("new agent id %s for the logs in %s", agent_id, self.directory)
        self.agent_id = agent_id
        start = reserved + 1 if isinstance(reserved, int) and reserved >= 0 else 1
        self.next_seq = max(start, highest_seq_in_logs(self.directory) + 1)
        self._lease()

    def stamp(self, line_json: str) -> str:
        """The record's JSON with `"seq":N` first (where the spool and the collector look for it)."""
        seq = self.next_seq
        self.next_seq += 1
        if seq > self._reserved:
            self._lease()
        return f'{{"seq":{seq},{line_json[1:]}' if len(line_json) > 2 else f'{{"seq":{seq}}}'

    def _lease(self) -> None:
        reserved = self.next_seq + LEASE
        try:
            write_json_atomically(self.path, {"agent_id": self.agent_id, "seq_reserved": reserved})
        except OSError as exc:
            # The seqs stay unique anyway: a restart also starts past the highest seq in the logs.
            log.error("cannot write %s: %s", self.path, exc.strerror)
        self._reserved = reserved


def highest_seq_in_logs(directory: Path) -> int:
    """The highest seq in the last complete lines of the log files (0 when there is none)."""
    spool = LogSpool(directory)
    return max((spool.last_seq_of(path) or 0 for path in spool.files()), default=0)

"""The embedded store: SQLite in WAL mode, stdlib sqlite3 in threads of its own.

Ingest is group-committed: the batches that arrive while a commit is under way are handed to the writer
thread together, in one transaction (fsynced, synchronous=FULL), and each request is answered only after
that commit. One thread hand-over per group, not per request: measured, a hand-over per request cost
more (~0.3 ms of GIL contention) than the inserts. Reads and WAL checkpoints run in another thread with
their own connection; WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from agent.models import IngestAck
from collector.ingest import MinuteRollup, ParsedBatch
from collector.store.base import AgentRow, SessionFilter, SessionRow, StoreError, TokenRow, unstorable
from collector.tokens import TokenKind

log = logging.getLogger(__name__)

T = TypeVar("T")
GROUP_MAX_BATCHES = 512
GROUP_MAX_RECORDS = 5000
CHECKPOINT_EVERY_S = 1.0
# What sqlite3 raises for a value it cannot hold (a lone surrogate, an integer past 64 bits, a huge string):
# the batch's fault, so a 400 for it alone. Ingest validation refuses these first; this is the backstop.
UNSTORABLE = (UnicodeError, OverflowError, sqlite3.DataError)

SESSIONS_TABLE = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT NOT NULL, agent_id TEXT NOT NULL, started_at REAL, ended_at REAL, platform TEXT,
    worst_rank INTEGER, records INTEGER NOT NULL DEFAULT 0, summary_line TEXT, PRIMARY KEY (agent_id, session_id));
CREATE INDEX IF NOT EXISTS sessions_agent ON sessions (agent_id, started_at);
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, created_at REAL NOT NULL, agent_id TEXT);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, name TEXT NOT NULL, token_name TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, records INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER, latest_json TEXT, alerts_json TEXT, latest_at REAL);
CREATE TABLE IF NOT EXISTS records (
    agent_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, at REAL, session_id TEXT,
    line TEXT NOT NULL, PRIMARY KEY (agent_id, seq));
CREATE INDEX IF NOT EXISTS records_session ON records (session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_at ON records (at);
CREATE TABLE IF NOT EXISTS minutes (
    agent_id TEXT NOT NULL, minute REAL NOT NULL, ticks INTEGER NOT NULL, worst_rank INTEGER,
    cpu_sum REAL NOT NULL, cpu_count INTEGER NOT NULL, bitrate_sum REAL NOT NULL, bitrate_count INTEGER NOT NULL,
    PRIMARY KEY (agent_id, minute));
"""
    + SESSIONS_TABLE
)

UPSERT_MINUTE = """
INSERT INTO minutes (agent_id, minute, ticks, worst_rank, cpu_sum, cpu_count, bitrate_sum, bitrate_count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id, minute) DO UPDATE SET
    ticks = minutes.ticks + excluded.ticks,
    worst_rank = max(coalesce(minutes.worst_rank, excluded.worst_rank), coalesce(excluded.worst_rank, minutes.worst_rank)),
    cpu_sum = minutes.cpu_sum + excluded.cpu_sum, cpu_count = minutes.cpu_count + excluded.cpu_count,
    bitrate_sum = minutes.bitrate_sum + excluded.bitrate_sum,
    bitrate_count = minutes.bitrate_count + excluded.bitrate_count
"""

UPSERT_AGENT = """
INSERT INTO agents (agent_id, name, token_name, first_seen, last_seen, records, last_seq, latest_json,
                    alerts_json, latest_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id) DO UPDATE SET
    name = excluded.name, token_name = excluded.token_name, last_seen = excluded.last_seen,
    records = agents.records + excluded.records,
    last_seq = CASE WHEN excluded.last_seq IS NULL THEN agents.last_seq
                    WHEN agents.last_seq IS NULL THEN excluded.last_seq
                    ELSE max(agents.last_seq, excluded.last_seq) END,
    latest_json = CASE WHEN excluded.latest_at >= coalesce(agents.latest_at, 0)
                       THEN excluded.latest_json ELSE agents.latest_json END,
    alerts_json = CASE WHEN excluded.latest_at >= coalesce(agents.latest_at, 0)
                       THEN excluded.alerts_json ELSE agents.alerts_json END,
    latest_at = max(coalesce(agents.latest_at, 0), coalesce(excluded.latest_at, 0))
"""

UPSERT_SESSION = """
INSERT INTO sessions (session_id, agent_id, started_at, ended_at, platform, worst_rank, records, summary_line)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id, session_id) DO UPDATE SET
    started_at = min(coalesce(sessions.started_at, excluded.started_at), coalesce(excluded.started_at, sessions.started_at)),
    ended_at = max(coalesce(sessions.ended_at, excluded.ended_at), coalesce(excluded.ended_at, sessions.ended_at)),
    platform = coalesce(excluded.platform, sessions.platform),
    worst_rank = max(coalesce(sessions.worst_rank, excluded.worst_rank), coalesce(excluded.worst_rank, sessions.worst_rank)),
    records = sessions.records + excluded.records,
    summary_line = coalesce(excluded.summary_line, sessions.summary_line)
"""


Batch = tuple[str, str, str, ParsedBatch]  # agent_id, agent_name, token_name, batch
Pending = tuple[Batch, "asyncio.Future[IngestAck]"]


def _epoch(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _migrate(connection: sqlite3.Connection) -> None:
    """Databases of earlier collectors: tokens learn their agent, sessions are keyed by agent and session."""
    if "agent_id" not in {row[1] for row in connection.execute("PRAGMA table_info(tokens)")}:
        connection.execute("ALTER TABLE tokens ADD COLUMN agent_id TEXT")
    connection.execute("CREATE UNIQUE INDEX IF NOT EXISTS tokens_agent ON tokens (agent_id)")
    keyed = {row[1] for row in connection.execute("PRAGMA table_info(sessions)") if row[5] > 0}
    if keyed == {"session_id"}:
        connection.executescript(
            f"""
            BEGIN IMMEDIATE;
            ALTER TABLE sessions RENAME TO sessions_before_agent_key;
            DROP INDEX IF EXISTS sessions_agent;
            {SESSIONS_TABLE}
            INSERT INTO sessions SELECT session_id, agent_id, started_at, ended_at, platform, worst_rank, records,
                summary_line FROM sessions_before_agent_key;
            DROP TABLE sessions_before_agent_key;
            COMMIT;
            """
        )


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    connection.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged batch survives a power cut too (an agent moves its cursor on the ack and will
    # not send those lines again). One fsync per group commit, in the writer thread.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA busy_timeout=10000")
    return connection


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[Pending] = []
        self._flush_scheduled = False
        self._committing = False
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")
        self._write_connection: sqlite3.Connection | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
        self._read_connection: sqlite3.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def setup() -> None:
            connection = _connect(self.path)
            connection.executescript(SCHEMA)
            _migrate(connection)
            self._read_connection = connection

        await self._read(setup)
        self._write_connection = _connect(self.path)
        # Checkpoints (which fsync) run in the reader thread, not inside an ingest on the event loop.
        self._write_connection.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = asyncio.create_task(self._checkpoint_forever())

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        while self._pending or self._committing:  # answer what is in flight before closing
            self._flush()
            await asyncio.sleep(0.01)
        self._writer.shutdown(wait=True)
        if self._write_connection is not None:
            self._write_connection.close()
            self._write_connection = None
        if self._read_connection is not None:
            await self._read(self._checkpoint)
            await self._read(self._read_connection.close)
        self._reader.shutdown(wait=True)

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            try:
                await self._read(self._checkpoint)
            except StoreError as exc:
                log.warning("WAL checkpoint: %s", exc)

    def _checkpoint(self) -> None:
        assert self._read_connection is not None
        self._read_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # --- ingest: group commit on the event loop ---------------------------------------------------

    async def ingest(self, agent_id: str, agent_name: str, token_name: str, batch: ParsedBatch) -> IngestAck:
        """Committed with every batch that arrived in the same turn of the event loop, then answered."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestAck] = loop.create_future()
        self._pending.append(((agent_id, agent_name, token_name, batch), future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        """Hand what is pending to the writer thread, one group at a time (more gather meanwhile)."""
        self._flush_scheduled = False
        if self._committing or not self._pending:
            return  # the commit under way flushes again when it is done
        group, self._pending = self._pending, []
        self._committing = True
        work = asyncio.get_running_loop().run_in_executor(self._writer, self._commit_all, [args for args, _ in group])
        work.add_done_callback(lambda done: self._committed(group, done))

    def _committed(self, group: list[Pending], done: asyncio.Future[list[IngestAck | Exception]]) -> None:
        self._committing = False
        outcomes: list[IngestAck | Exception]
        try:
            outcomes = done.result()
        except Exception as exc:  # the writer itself failed: every waiting request still gets an answer
            outcomes = [StoreError(f"the database failed: {exc}") for _ in group]
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():
                continue  # the client went away; its batch is stored anyway
            if isinstance(outcome, IngestAck):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
        if self._pending:
            self._flush()

    def _commit_all(self, group: list[Batch]) -> list[IngestAck | Exception]:
        """In the writer thread: transactions of at most GROUP_MAX_BATCHES batches / GROUP_MAX_RECORDS records."""
        outcomes: list[IngestAck | Exception] = []
        chunk: list[Batch] = []
        records = 0
        for args in group:
            chunk.append(args)
            records += len(args[3].records)
            if len(chunk) >= GROUP_MAX_BATCHES or records >= GROUP_MAX_RECORDS:
                outcomes += self._commit_group(chunk)
                chunk, records = [], 0
        if chunk:
            outcomes += self._commit_group(chunk)
        return outcomes

    def _commit_group(self, group: list[Batch]) -> list[IngestAck | Exception]:
        connection = self._write_connection
        assert connection is not None
        try:
            connection.execute("BEGIN IMMEDIATE")
            acks: list[IngestAck | Exception] = [self._ingest_one(connection, *args) for args in group]
            connection.execute("COMMIT")  # synchronous=FULL: on disk before any of these is answered
        except Exception as exc:  # a database error or a bug: every waiting request gets an answer
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if len(group) > 1:  # find the one batch that fails; the others still go in
                return [outcome for one in group for outcome in self._commit_group([one])]
            if isinstance(exc, UNSTORABLE):  # this batch's content, not the database: a 400, not retried
                log.warning("refused a batch the database cannot hold: %s", exc)
                return [unstorable(exc)]
            log.error("cannot store a batch: %s", exc)
            return [StoreError(f"the database refused the batch: {exc}")]
        return acks

    def _ingest_one(
        self, connection: sqlite3.Connection, agent_id: str, agent_name: str, token_name: str, batch: ParsedBatch
    ) -> IngestAck:
        inserted: set[int] = set()
        for record in batch.records:
            cursor = connection.execute(
                "INSERT INTO records (agent_id, seq, type, at, session_id, line) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (agent_id, record.seq, record.type, _epoch(record.at), record.session_id, record.line),
            )
            if cursor.rowcount == 1:
                inserted.add(record.seq)
        now = datetime.now(UTC).timestamp()
        connection.execute(
            UPSERT_AGENT,
            (
                agent_id,
                agent_name,
                token_name,
                now,
                now,
                len(inserted),
                batch.last_seq,
                batch.latest_json,
                batch.alerts_json,
                _epoch(batch.latest_at),
            ),
        )
        for touch in batch.sessions_of(inserted):
            connection.execute(
                UPSERT_SESSION,
                (
                    touch.session_id,
                    agent_id,
                    _epoch(touch.first_at),
                    _epoch(touch.last_at),
                    touch.platform,
                    touch.worst_rank,
                    touch.records,
                    touch.summary_line,
                ),
            )
        for minute in batch.minutes_of(inserted):
            connection.execute(
                UPSERT_MINUTE,
                (
                    agent_id,
                    minute.minute.timestamp(),
                    minute.ticks,
                    minute.worst_rank,
                    minute.cpu_sum,
                    minute.cpu_count,
                    minute.bitrate_sum,
                    minute.bitrate_count,
                ),
            )
        row = connection.execute("SELECT last_seq FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
        return IngestAck(
            accepted=len(inserted), duplicates=len(batch.records) - len(inserted), last_seq=row[0] if row else None
        )

    # --- everything else: the reader thread ------------------------------------------------------

    async def _read(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader, work)
        except sqlite3.Error as exc:
            raise StoreError(f"the database failed: {exc}") from exc

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._read_connection is not None
        return self._read_connection.execute(sql, params).fetchall()

    async def add_token(self, name: str, kind: TokenKind, token_hash: str, agent_id: str | None = None) -> None:
        await self._read(
            lambda: self._query(
                "INSERT INTO tokens (hash, name, kind, created_at, agent_id) VALUES (?, ?, ?, ?, ?)",
                (token_hash, name, kind, datetime.now(UTC).timestamp(), agent_id),
            )
        )

    async def find_token(self, token_hash: str) -> TokenRow | None:
        rows = await self._read(
            lambda: self._query("SELECT name, kind, agent_id FROM tokens WHERE hash = ?", (token_hash,))
        )
        return TokenRow(*rows[0]) if rows else None

    async def bind_token(self, token_hash: str, agent_id: str) -> TokenRow | None:
        def bind() -> None:
            # The unique index on agent_id makes it first come, first served across collectors too.
            with contextlib.suppress(sqlite3.IntegrityError):
                self._query(
                    "UPDATE tokens SET agent_id = ? WHERE hash = ? AND kind = 'agent' AND agent_id IS NULL",
                    (agent_id, token_hash),
                )

        await self._read(bind)
        return await self.find_token(token_hash)

    async def agents(self) -> list[AgentRow]:
        rows = await self._read(
            lambda: self._query(
                "SELECT agent_id, name, token_name, first_seen, last_seen, records, last_seq, latest_json, "
                "alerts_json FROM agents ORDER BY name, agent_id"
            )
        )
        return [
            AgentRow(r[0], r[1], r[2], _time(r[3]) or datetime.now(UTC), _time(r[4]) or datetime.now(UTC), *r[5:])
            for r in rows
        ]

    async def records(self, agent_id: str, after_seq: int, limit: int) -> list[tuple[int, str]]:
        rows = await self._read(
            lambda: self._query(
                "SELECT seq, line FROM records WHERE agent_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (agent_id, after_seq, limit),
            )
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    _SESSION_COLUMNS = (
        "s.session_id, s.agent_id, a.name, s.started_at, s.ended_at, s.platform, s.worst_rank, s.records, "
        "s.summary_line FROM sessions s LEFT JOIN agents a ON a.agent_id = s.agent_id"
    )

    @staticmethod
    def _session_row(r: tuple[Any, ...]) -> SessionRow:
        return SessionRow(r[0], r[1], r[2], _time(r[3]), _time(r[4]), r[5], r[6], r[7], r[8])

    async def sessions(self, where: SessionFilter) -> list[SessionRow]:
        clauses: list[str] = ["1 = 1"]
        params: list[object] = []
        if where.agent is not None:
            clauses.append("(s.agent_id = ? OR a.name = ?)")
            params += [where.agent, where.agent]
        if where.since is not None:
            clauses.append("s.ended_at >= ?")
            params.append(where.since.timestamp())
        if where.until is not None:
            clauses.append("s.started_at <= ?")
            params.append(where.until.timestamp())
        if where.platform is not None:
            clauses.append("s.platform = ?")
            params.append(where.platform)
        if where.worst_state_rank is not None:
            clauses.append("s.worst_rank >= ?")
            params.append(where.worst_state_rank)
        if where.session_id is not None:
            clauses.append("s.session_id = ?")
            params.append(where.session_id)
        sql = f"SELECT {self._SESSION_COLUMNS} WHERE {' AND '.join(clauses)} ORDER BY s.started_at DESC LIMIT ?"
        rows = await self._read(lambda: self._query(sql, (*params, where.limit)))
        return [self._session_row(r) for r in rows]

    async def session(self, agent_id: str, session_id: str) -> SessionRow | None:
        rows = await self._read(
            lambda: self._query(
                f"SELECT {self._SESSION_COLUMNS} WHERE s.agent_id = ? AND s.session_id = ?", (agent_id, session_id)
            )
        )
        return self._session_row(rows[0]) if rows else None

    async def session_records(self, agent_id: str, session_id: str, types: tuple[str, ...], limit: int) -> list[str]:
        marks = ", ".join("?" for _ in types)
        rows = await self._read(
            lambda: self._query(
                f"SELECT line FROM records WHERE session_id = ? AND agent_id = ? AND type IN ({marks}) "
                "ORDER BY at, seq LIMIT ?",
                (session_id, agent_id, *types, limit),
            )
        )
        return [str(r[0]) for r in rows]

    async def minutes(self, agent_id: str, since: datetime, until: datetime) -> list[MinuteRollup]:
        rows = await self._read(
            lambda: self._query(
                "SELECT minute, ticks, worst_rank, cpu_sum, cpu_count, bitrate_sum, bitrate_count FROM minutes "
                "WHERE agent_id = ? AND minute >= ? AND minute <= ? ORDER BY minute",
                (agent_id, since.timestamp(), until.timestamp()),
            )
        )
        return [MinuteRollup(datetime.fromtimestamp(r[0], UTC), *r[1:]) for r in rows]

    async def prune(self, raw_before: datetime, rollups_before: datetime | None = None) -> int:
        def delete() -> int:
            assert self._read_connection is not None
            cursor = self._read_connection.execute("DELETE FROM records WHERE at < ?", (raw_before.timestamp(),))
            if rollups_before is not None:
                self._read_connection.execute("DELETE FROM minutes WHERE minute < ?", (rollups_before.timestamp(),))
            return int(cursor.rowcount)

        return await self._read(delete)

    async def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.path.parent.glob(self.path.name + "*") if path.is_file())

"""The team store: PostgreSQL through psycopg 3, for several collectors in front of one database.

Every collector process opens a few connections and keeps nothing else (batches waiting for the next
group commit live only until their request is answered): two collectors may receive the
same resent batch at once, and `ON CONFLICT DO NOTHING` on `(agent_id, seq)` stores it once. The agent's
row is updated in the same transaction (`GREATEST` for last_seq), so the ack, sent after the commit,
means the batch is in. Lines are kept as text, byte for byte as the agent wrote them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from agent.models import IngestAck
from agent.redact import redact
from collector.ingest import BatchError, MinuteRollup, ParsedBatch
from collector.store.base import AgentRow, SessionFilter, SessionRow, StoreError, TokenRow, unstorable
from collector.tokens import TokenKind

log = logging.getLogger(__name__)

POOL_SIZE = 4  # connections, and writers: each commits a group of the batches waiting
GROUP_MAX_BATCHES = 512
GROUP_MAX_RECORDS = 5000
SCHEMA_LOCK = 7_414_001  # pg_advisory_xact_lock key: collectors starting together create the schema once

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    hash text PRIMARY KEY, name text NOT NULL, kind text NOT NULL, created_at timestamptz NOT NULL, agent_id text);
CREATE TABLE IF NOT EXISTS agents (
    agent_id text PRIMARY KEY, name text NOT NULL, token_name text NOT NULL,
    first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL, records bigint NOT NULL DEFAULT 0,
    last_seq bigint, latest_json text, alerts_json text, latest_at timestamptz);
CREATE TABLE IF NOT EXISTS records (
    agent_id text NOT NULL, seq bigint NOT NULL, type text NOT NULL, at timestamptz, session_id text,
    line text {compression} NOT NULL, PRIMARY KEY (agent_id, seq));
CREATE INDEX IF NOT EXISTS records_session ON records (session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_at ON records USING brin (at);
CREATE TABLE IF NOT EXISTS sessions (
    session_id text NOT NULL, agent_id text NOT NULL, started_at timestamptz, ended_at timestamptz,
    platform text, worst_rank int, records bigint NOT NULL DEFAULT 0, summary_line text,
    PRIMARY KEY (agent_id, session_id));
CREATE INDEX IF NOT EXISTS sessions_agent ON sessions (agent_id, started_at);
CREATE TABLE IF NOT EXISTS minutes (
    agent_id text NOT NULL, minute timestamptz NOT NULL, ticks bigint NOT NULL, worst_rank int,
    cpu_sum double precision NOT NULL, cpu_count bigint NOT NULL,
    bitrate_sum double precision NOT NULL, bitrate_count bigint NOT NULL,
    PRIMARY KEY (agent_id, minute));
"""

# Databases of earlier collectors: tokens learn their agent, sessions are keyed by agent and session.
MIGRATE = """
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS agent_id text;
CREATE UNIQUE INDEX IF NOT EXISTS tokens_agent ON tokens (agent_id);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.key_column_usage WHERE table_schema = current_schema()
                   AND table_name = 'sessions' AND constraint_name = 'sessions_pkey' AND column_name = 'agent_id')
    THEN ALTER TABLE sessions DROP CONSTRAINT sessions_pkey, ADD PRIMARY KEY (agent_id, session_id);
    END IF;
END $$;
"""

UPSERT_MINUTE = """
INSERT INTO minutes (agent_id, minute, ticks, worst_rank, cpu_sum, cpu_count, bitrate_sum, bitrate_count)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (agent_id, minute) DO UPDATE SET
    ticks = minutes.ticks + excluded.ticks,
    worst_rank = GREATEST(minutes.worst_rank, excluded.worst_rank),
    cpu_sum = minutes.cpu_sum + excluded.cpu_sum, cpu_count = minutes.cpu_count + excluded.cpu_count,
    bitrate_sum = minutes.bitrate_sum + excluded.bitrate_sum,
    bitrate_count = minutes.bitrate_count + excluded.bitrate_count
"""

INSERT_RECORDS = """
INSERT INTO records (agent_id, seq, type, at, session_id, line)
SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::timestamptz[], %b::text[], %b::text[])
ON CONFLICT DO NOTHING
RETURNING agent_id, seq
"""

UPSERT_AGENT = """
INSERT INTO agents (agent_id, name, token_name, first_seen, last_seen, records, last_seq, latest_json,
                    alerts_json, latest_at)
VALUES (%s, %s, %s, now(), now(), %s, %s, %s, %s, %s)
ON CONFLICT (agent_id) DO UPDATE SET
    name = excluded.name, token_name = excluded.token_name, last_seen = now(),
    records = agents.records + excluded.records,
    last_seq = GREATEST(agents.last_seq, excluded.last_seq),
    latest_json = CASE WHEN excluded.latest_at >= coalesce(agents.latest_at, '-infinity')
                       THEN excluded.latest_json ELSE agents.latest_json END,
    alerts_json = CASE WHEN excluded.latest_at >= coalesce(agents.latest_at, '-infinity')
                       THEN excluded.alerts_json ELSE agents.alerts_json END,
    latest_at = GREATEST(agents.latest_at, excluded.latest_at)
"""

UPSERT_SESSION = """
INSERT INTO sessions (session_id, agent_id, started_at, ended_at, platform, worst_rank, records, summary_line)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (agent_id, session_id) DO UPDATE SET
    started_at = LEAST(sessions.started_at, excluded.started_at),
    ended_at = GREATEST(sessions.ended_at, excluded.ended_at),
    platform = coalesce(excluded.platform, sessions.platform),
    worst_rank = GREATEST(sessions.worst_rank, excluded.worst_rank),
    records = sessions.records + excluded.records,
    summary_line = coalesce(excluded.summary_line, sessions.summary_line)
"""

SESSION_COLUMNS = (
    "s.session_id, s.agent_id, a.name, s.started_at, s.ended_at, s.platform, s.worst_rank, s.records, "
    "s.summary_line FROM sessions s LEFT JOIN agents a ON a.agent_id = s.agent_id"
)


class PostgresStore:
    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.pool_size = pool_size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._opened = 0
        self._pending: asyncio.Queue[tuple[tuple[str, str, str, ParsedBatch], asyncio.Future[IngestAck]]] = (
            asyncio.Queue()
        )
        self._writers: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        async with self._connection() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            try:
                # lz4 costs a fraction of pglz's CPU per ~2 KB tick line; builds without lz4 use the default.
                async with connection.transaction():
                    await connection.execute(SCHEMA.format(compression="COMPRESSION lz4"))
            except psycopg.errors.FeatureNotSupported:
                await connection.execute(SCHEMA.format(compression=""))
            await connection.execute(MIGRATE)

    async def close(self) -> None:
        for writer in self._writers:
            writer.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        self._writers = []
        while not self._idle.empty():
            await self._idle.get_nowait().close()
        self._opened = 0

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; a broken one (the server restarted) is dropped and the error is a StoreError."""
        if self._idle.empty() and self._opened < self.pool_size:
            self._opened += 1
            try:
                connection = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
            except psycopg.Error as exc:
                self._opened -= 1
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StoreError(f"cannot reach PostgreSQL: {redact(reason)}") from exc
        else:
            connection = await self._idle.get()
        try:
            yield connection
        except (psycopg.DataError, UnicodeError) as exc:
            # The values' fault (a NUL, a lone surrogate, a number out of range), not the database's: the
            # connection is fine, and the caller's batch alone is refused (400).
            self._idle.put_nowait(connection)
            raise unstorable(exc) from exc
        except psycopg.Error as exc:
            if connection.broken or connection.closed:
                self._opened -= 1
                await connection.close()
                raise StoreError(f"lost the PostgreSQL connection: {type(exc).__name__}") from exc
            self._idle.put_nowait(connection)
            raise StoreError(f"PostgreSQL refused: {exc.diag.message_primary or type(exc).__name__}") from exc
        except BaseException:
            self._opened -= 1
            await connection.close()  # cancelled mid-query: the connection's state is unknown
            raise
        else:
            self._idle.put_nowait(connection)

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with self._connection() as connection:
            cursor = await connection.execute(sql, params)
            return await cursor.fetchall() if cursor.description else []

    async def ingest(self, agent_id: str, agent_name: str, token_name: str, batch: ParsedBatch) -> IngestAck:
        """Queued for a writer, which commits it with the batches that arrived meanwhile (group commit)."""
        if not self._writers:
            self._writers = [asyncio.create_task(self._write_forever()) for _ in range(self.pool_size)]
        future: asyncio.Future[IngestAck] = asyncio.get_running_loop().create_future()
        self._pending.put_nowait(((agent_id, agent_name, token_name, batch), future))
        return await future

    async def _write_forever(self) -> None:
        while True:
            group = [await self._pending.get()]
            records = len(group[0][0][3].records)
            # Bounded by records too: a group of catching-up agents (500 lines each) stays a few MB.
            while len(group) < GROUP_MAX_BATCHES and records < GROUP_MAX_RECORDS and not self._pending.empty():
                group.append(self._pending.get_nowait())
                records += len(group[-1][0][3].records)
            try:
                acks = await self._commit_group([args for args, _ in group])
            except BatchError:
                # One batch the database cannot hold: commit each alone, so only that one is refused.
                for args, future in group:
                    try:
                        ack = (await self._commit_group([args]))[0]
                    except (BatchError, StoreError) as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(ack)
                continue
            except StoreError as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except Exception as exc:  # a bug: every waiting request still gets an answer (a 500)
                log.exception("storing a group of batches failed")
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), ack in zip(group, acks, strict=True):
                if not future.done():
                    future.set_result(ack)

    async def _commit_group(self, group: list[tuple[str, str, str, ParsedBatch]]) -> list[IngestAck]:
        # Rows in one order (agent, seq) in every transaction: two collectors never lock them crosswise.
        rows = sorted(
            ((agent_id, record) for agent_id, _, _, batch in group for record in batch.records),
            key=lambda row: (row[0], row[1].seq),
        )
        async with self._connection() as connection, connection.transaction():
            cursor = await connection.execute(
                INSERT_RECORDS,
                (
                    [agent_id for agent_id, _ in rows],
                    [r.seq for _, r in rows],
                    [r.type for _, r in rows],
                    [r.at for _, r in rows],
                    [r.session_id for _, r in rows],
                    [r.line for _, r in rows],
                ),
            )
            inserted: dict[str, set[int]] = {}
            for agent_id, seq in await cursor.fetchall():
                inserted.setdefault(agent_id, set()).add(int(seq))
            # Which batch stored which record: a seq sent twice in one group counts for the first only.
            claimed: dict[str, set[int]] = {}
            mine: list[set[int]] = []
            for agent_id, _, _, batch in group:
                taken = claimed.setdefault(agent_id, set())
                fresh = {r.seq for r in batch.records if r.seq in inserted.get(agent_id, ())} - taken
                taken |= fresh
                mine.append(fresh)
            agents = sorted({args[0]: args for args in group}.values(), key=lambda args: args[0])
            agent_rows: list[tuple[Any, ...]] = []
            session_rows: list[tuple[Any, ...]] = []
            minute_rows: list[tuple[Any, ...]] = []
            for agent_id, agent_name, token_name, _ in agents:
                batches = [(batch, fresh) for (a, _, _, batch), fresh in zip(group, mine, strict=True) if a == agent_id]
                latest = None
                for batch, _ in batches:
                    if batch.latest_at is not None and (
                        latest is None or batch.latest_at >= (latest.latest_at or batch.latest_at)
                    ):
                        latest = batch
                seqs = [b.last_seq for b, _ in batches if b.last_seq is not None]
                agent_rows.append(
                    (
                        agent_id,
                        agent_name,
                        token_name,
                        len(claimed[agent_id]),
                        max(seqs) if seqs else None,
                        latest.latest_json if latest else None,
                        latest.alerts_json if latest else None,
                        latest.latest_at if latest else None,
                    )
                )
                for batch, fresh in batches:
                    for m in batch.minutes_of(fresh):
                        minute_rows.append(
                            (
                                agent_id,
                                m.minute,
                                m.ticks,
                                m.worst_rank,
                                m.cpu_sum,
                                m.cpu_count,
                                m.bitrate_sum,
                                m.bitrate_count,
                            )
                        )
                    for touch in batch.sessions_of(fresh):
                        session_rows.append(
                            (
                                touch.session_id,
                                agent_id,
                                touch.first_at,
                                touch.last_at,
                                touch.platform,
                                touch.worst_rank,
                                touch.records,
                                touch.summary_line,
                            )
                        )
            async with connection.cursor() as many:  # executemany pipelines: one round trip, not one per agent
                await many.executemany(UPSERT_AGENT, agent_rows)
                if session_rows:
                    session_rows.sort(key=lambda row: (str(row[1]), str(row[0])))
                    await many.executemany(UPSERT_SESSION, session_rows)
                if minute_rows:
                    minute_rows.sort(key=lambda row: (row[0], row[1]))
                    await many.executemany(UPSERT_MINUTE, minute_rows)
            cursor = await connection.execute(
                "SELECT agent_id, last_seq FROM agents WHERE agent_id = ANY(%s)", ([a[0] for a in agents],)
            )
            last_seqs = {row[0]: row[1] for row in await cursor.fetchall()}
        return [
            IngestAck(accepted=len(fresh), duplicates=len(batch.records) - len(fresh), last_seq=last_seqs.get(agent_id))
            for (agent_id, _, _, batch), fresh in zip(group, mine, strict=True)
        ]

    async def add_token(self, name: str, kind: TokenKind, token_hash: str, agent_id: str | None = None) -> None:
        await self._rows(
            "INSERT INTO tokens (hash, name, kind, created_at, agent_id) VALUES (%s, %s, %s, now(), %s)",
            (token_hash, name, kind, agent_id),
        )

    async def find_token(self, token_hash: str) -> TokenRow | None:
        rows = await self._rows("SELECT name, kind, agent_id FROM tokens WHERE hash = %s", (token_hash,))
        return TokenRow(*rows[0]) if rows else None

    async def bind_token(self, token_hash: str, agent_id: str) -> TokenRow | None:
        async with self._connection() as connection:
            # The unique index on agent_id makes it first come, first served across collectors.
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                await connection.execute(
                    "UPDATE tokens SET agent_id = %s WHERE hash = %s AND kind = 'agent' AND agent_id IS NULL",
                    (agent_id, token_hash),
                )
        return await self.find_token(token_hash)

    async def agents(self) -> list[AgentRow]:
        rows = await self._rows(
            "SELECT agent_id, name, token_name, first_seen, last_seen, records, last_seq, latest_json, alerts_json "
            "FROM agents ORDER BY name, agent_id"
        )
        return [AgentRow(*r) for r in rows]

    async def records(self, agent_id: str, after_seq: int, limit: int) -> list[tuple[int, str]]:
        rows = await self._rows(
            "SELECT seq, line FROM records WHERE agent_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (agent_id, after_seq, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def sessions(self, where: SessionFilter) -> list[SessionRow]:
        clauses: list[str] = ["true"]
        params: list[object] = []
        if where.agent is not None:
            clauses.append("(s.agent_id = %s OR a.name = %s)")
            params += [where.agent, where.agent]
        if where.since is not None:
            clauses.append("s.ended_at >= %s")
            params.append(where.since)
        if where.until is not None:
            clauses.append("s.started_at <= %s")
            params.append(where.until)
        if where.platform is not None:
            clauses.append("s.platform = %s")
            params.append(where.platform)
        if where.worst_state_rank is not None:
            clauses.append("s.worst_rank >= %s")
            params.append(where.worst_state_rank)
        if where.session_id is not None:
            clauses.append("s.session_id = %s")
            params.append(where.session_id)
        sql = f"SELECT {SESSION_COLUMNS} WHERE {' AND '.join(clauses)} ORDER BY s.started_at DESC NULLS LAST LIMIT %s"
        return [SessionRow(*r) for r in await self._rows(sql, (*params, where.limit))]

    async def session(self, agent_id: str, session_id: str) -> SessionRow | None:
        rows = await self._rows(
            f"SELECT {SESSION_COLUMNS} WHERE s.agent_id = %s AND s.session_id = %s", (agent_id, session_id)
        )
        return SessionRow(*rows[0]) if rows else None

    async def session_records(self, agent_id: str, session_id: str, types: tuple[str, ...], limit: int) -> list[str]:
        rows = await self._rows(
            "SELECT line FROM records WHERE session_id = %s AND agent_id = %s AND type = ANY(%s) "
            "ORDER BY at, seq LIMIT %s",
            (session_id, agent_id, list(types), limit),
        )
        return [str(r[0]) for r in rows]

    async def minutes(self, agent_id: str, since: datetime, until: datetime) -> list[MinuteRollup]:
        rows = await self._rows(
            "SELECT minute, ticks, worst_rank, cpu_sum, cpu_count, bitrate_sum, bitrate_count FROM minutes "
            "WHERE agent_id = %s AND minute >= %s AND minute <= %s ORDER BY minute",
            (agent_id, since, until),
        )
        return [MinuteRollup(*r) for r in rows]

    async def prune(self, raw_before: datetime, rollups_before: datetime | None = None) -> int:
        async with self._connection() as connection:
            cursor = await connection.execute("DELETE FROM records WHERE at < %s", (raw_before.astimezone(UTC),))
            if rollups_before is not None:
                await connection.execute("DELETE FROM minutes WHERE minute < %s", (rollups_before.astimezone(UTC),))
            return int(cursor.rowcount)

    async def size_bytes(self) -> int:
        rows = await self._rows("SELECT pg_database_size(current_database())")
        return int(rows[0][0])

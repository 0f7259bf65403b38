"""Sends the health log to the collector in order, forever, and moves the cursor only after the ack.

At-least-once on the wire, exactly-once at the collector: a batch is resent until the collector answers
that it is committed, and the collector stores each `(agent_id, seq)` once. Unreachable, timeouts, 5xx
and 429 are retried with a capped, jittered backoff (Retry-After honoured), in order. A 4xx is not
retried blindly: a refused token waits for a long pause and says why; a batch whose content is refused
(400 / 422, or 413 down to one line) is kept in `ship-rejected/` with the reason, and shipping goes on.
A collector that claims seqs this agent never wrote (another agent under this id, forged records) is said
(`collector_ahead_by_seqs`, an alert), and its word is not taken for where to start: the logs are resent.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
from pydantic import ValidationError

from agent.backoff import Backoff, parse_retry_after
from agent.beat import sleep_until_next_beat
from agent.models import IngestAck, ShippingState, ShippingStateName, utc_now
from agent.models.shipping import AGENT_ID_HEADER, AGENT_NAME_HEADER, INGEST_PATH
from agent.redact import redact
from agent.ship.cursor import Cursor, load_cursor, save_cursor
from agent.ship.sequence import highest_seq_in_logs
from agent.ship.settings import ShipSettings
from agent.ship.spool import Batch, LogSpool, Position, line_seq

log = logging.getLogger(__name__)

REFUSED_RETRY_S = 300.0  # a refused token or a wrong URL: try again this rarely, not in a loop
RECOUNT_EVERY_S = 60.0
REJECTED_DIR = "ship-rejected"
_SET_ASIDE_STATUSES = frozenset({400, 413, 422})


class Shipper:
    def __init__(
        self,
        settings: ShipSettings,
        directory: Path,
        agent_id: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        jitter: Callable[[], float] = random.random,
        seq_written: Callable[[], int] | None = None,
    ) -> None:
        """`seq_written`: the highest seq this agent has stamped (default: the highest in its logs)."""
        assert settings.url is not None and settings.token is not None
        self.settings = settings
        self.directory = directory
        self.agent_id = agent_id
        self.spool = LogSpool(directory)
        self._transport = transport
        self._jitter = jitter
        self._seq_written = seq_written or (lambda: highest_seq_in_logs(directory))
        self._collector_last_seq: int | None = None
        self._collector_ahead_by = 0
        self._acked: Position | None = None
        self._acked_seq: int | None = None
        self._batch_lines = settings.batch_max_lines
        self._wake = asyncio.Event()
        self._state: ShippingStateName = "connecting"
        self._connected = False
        self._waiting = 0
        self._oldest_at: datetime | None = None
        self._last_ack_at: datetime | None = None
        self._last_error: str | None = None
        self._last_rejected: str | None = None
        self._shipped = 0
        self._retries = 0
        self._set_aside = 0
        self._unshipped_deleted = 0
        self._skipped = 0
        self._last_recount = 0.0

    # --- what the rest of the agent sees ---------------------------------------------------------

    def write_line(self, line_json: str) -> None:
        """RecordSink: a line was just written to the log; wake up if idle."""
        self._waiting += 1
        self._wake.set()

    def state(self) -> ShippingState:
        age = None
        if self._oldest_at is not None:
            age = round(max(0.0, (utc_now() - self._oldest_at).total_seconds()), 3)
        return ShippingState(
            state=self._state,
            connected=self._connected,
            collector=self.settings.url or "",
            agent_id=self.agent_id,
            lines_waiting=max(0, self._waiting),
            oldest_waiting_age_s=age,
            last_ack_at=self._last_ack_at,
            last_error=self._last_error,
            last_rejected=self._last_rejected,
            lines_shipped_total=self._shipped,
            retries_total=self._retries,
            batches_set_aside_total=self._set_aside,
            unshipped_lines_deleted_total=self._unshipped_deleted,
            lines_skipped_total=self._skipped,
            collector_last_seq=self._collector_last_seq,
            collector_ahead_by_seqs=self._collector_ahead_by,
        )

    def may_delete(self, path: Path, total_bytes: int) -> bool:
        """Log retention asks before deleting a file: only when shipped, or past the hard cap (counted)."""
        last_seq = self.spool.last_seq_of(path)
        if last_seq is None or (self._acked_seq is not None and last_seq <= self._acked_seq):
            self.spool.forget(path.name)
            return True
        if total_bytes <= self.settings.hard_cap_bytes:
            return False
        start = self._acked.offset if self._acked is not None and self._acked.file == path.name else 0
        lines = self.spool.count_lines_in(path, start)
        self._unshipped_deleted += max(0, lines)
        self._waiting -= max(0, lines)
        log.critical(
            "the health logs reached ship.hard_cap_bytes (%d bytes) while the collector is behind: deleting %s "
            "with %d lines never shipped",
            self.settings.hard_cap_bytes,
            path.name,
            lines,
        )
        self.spool.forget(path.name)
        return True

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        cursor = await asyncio.to_thread(load_cursor, self.directory, self.agent_id)
        if cursor is not None:
            self._acked, self._acked_seq = cursor.position, cursor.last_seq
        await self._recount()
        async with self._client() as http:
            if cursor is None:
                await self._learn_last_seq(http)
            while True:
                batch = await asyncio.to_thread(self.spool.read_batch, self._acked, self._acked_seq, self._batch_lines)
                self._skipped += batch.skipped
                if batch.lines:
                    self._oldest_at = _parse_time(batch.first_record_at)
                    await self._deliver(http, batch)
                    if len(batch.lines) >= self._batch_lines:
                        continue  # a backlog: the next batch at once
                    if self._acked == batch.end:
                        self._oldest_at = None  # caught up: nothing waits until the next line
                elif batch.end is not None and batch.end != self._acked:
                    self._advance(batch)  # only skipped lines, or the step to the next file
                else:
                    self._oldest_at = None
                if time.monotonic() - self._last_recount > RECOUNT_EVERY_S:
                    await self._recount()
                self._wake.clear()
                await sleep_until_next_beat(self.settings.batch_interval_s)  # with the agent's other loops

    async def flush(self, timeout_s: float) -> None:
        """Ship what is still waiting (the agent is stopping), within `timeout_s`; the rest goes next start."""
        if self._acked_seq is None:
            return
        try:
            async with asyncio.timeout(timeout_s), self._client() as http:
                while True:
                    batch = await asyncio.to_thread(
                        self.spool.read_batch, self._acked, self._acked_seq, self._batch_lines
                    )
                    if not batch.lines:
                        return
                    await self._deliver(http, batch)
        except TimeoutError:
            log.warning("%d lines not shipped before stopping; they go on the next start", self._waiting)

    def _client(self) -> httpx.AsyncClient:
        token = self.settings.token.get_secret_value() if self.settings.token else ""
        return httpx.AsyncClient(
            base_url=self.settings.url or "",
            timeout=self.settings.timeout_s,
            transport=self._transport,
            headers={
                "Authorization": f"Bearer {token}",
                AGENT_ID_HEADER: self.agent_id,
                AGENT_NAME_HEADER: self.settings.agent_name.encode("ascii", "replace").decode(),
            },
        )

    async def _learn_last_seq(self, http: httpx.AsyncClient) -> None:
        """No cursor: ask the collector what it holds (an empty batch), and start after that."""
        ack = None
        while ack is None:
            ack = await self._send_until_answered(http, [])
        if self._collector_ahead_by > 0:
            self._acked_seq = 0  # its last_seq is not this agent's: resend the logs (it keeps each line once)
            log.warning("no shipping cursor, and the collector's last seq is not this agent's: resending the logs")
            return
        self._acked_seq = ack.last_seq or 0
        log.info("no shipping cursor: the collector holds this agent up to seq %d; starting after it", self._acked_seq)

    async def _deliver(self, http: httpx.AsyncClient, batch: Batch) -> None:
        ack = await self._send_until_answered(http, batch.lines)
        if ack is None:
            return  # set aside or refused: the state says why; the caller reads again
        self._advance(batch)
        self._shipped += ack.accepted + ack.duplicates

    async def _send_until_answered(self, http: httpx.AsyncClient, lines: list[bytes]) -> IngestAck | None:
        """POST until the collector acknowledges (IngestAck) or refuses (None, after handling it)."""
        backoff = Backoff(1.0, self.settings.max_backoff_s, random_fraction=self._jitter)
        body = gzip.compress(b"".join(lines), compresslevel=5)
        while True:
            retry_after: float | None = None
            try:
                response = await http.post(
                    INGEST_PATH,
                    content=body,
                    headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
                )
            except httpx.HTTPError as exc:
                self._failed(f"collector unreachable: {type(exc).__name__}: {exc}")
            else:
                if response.status_code == 200:
                    try:
                        ack = IngestAck.model_validate_json(response.content)
                    except ValidationError:
                        self._failed("the collector answered 200 without an acknowledgement (is this a collector?)")
                    else:
                        self._state, self._connected, self._last_error = "connected", True, None
                        self._last_ack_at = utc_now()
                        await self._check_last_seq(ack, lines)
                        return ack
                elif response.status_code == 429 or response.status_code >= 500 or response.status_code == 408:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    self._failed(f"collector answered {response.status_code}: {_reason(response)}")
                else:
                    await self._refused(response, lines)
                    return None
            self._retries += 1
            await asyncio.sleep(backoff.next_s(retry_after))

    async def _check_last_seq(self, ack: IngestAck, lines: list[bytes]) -> None:
        """Compare the collector's last_seq with what this agent wrote: past it, the records are not ours."""
        if ack.last_seq == self._collector_last_seq and self._collector_ahead_by == 0:
            return  # unchanged and fine: the common case costs nothing
        self._collector_last_seq = ack.last_seq
        sent = line_seq(lines[-1]) if lines else None
        if ack.last_seq is None or (sent is not None and ack.last_seq <= sent):
            self._collector_ahead_by = 0  # up to what this very batch carried: ours
            return
        written = await asyncio.to_thread(self._seq_written)
        ahead_by = max(0, ack.last_seq - written)
        if ahead_by > 0 and self._collector_ahead_by == 0:
            log.error(
                "the collector says it holds this agent's records up to seq %d, but this agent has written only up "
                "to %d: another agent ships under this agent's id (a copied log folder?) or the records are forged",
                ack.last_seq,
                written,
            )
        self._collector_ahead_by = ahead_by

    def _failed(self, why: str) -> None:
        if self._connected or self._last_error is None:
            log.warning("shipping: %s; retrying with backoff", redact(why))
        self._state, self._connected, self._last_error = "retrying", False, redact(why)

    async def _refused(self, response: httpx.Response, lines: list[bytes]) -> None:
        status, reason = response.status_code, _reason(response)
        if status == 413 and len(lines) > 1:
            self._batch_lines = max(1, len(lines) // 2)
            log.warning(
                "the collector finds %d lines too large (413); sending %d per batch", len(lines), self._batch_lines
            )
            return
        if status in _SET_ASIDE_STATUSES and lines:
            path = await asyncio.to_thread(self._set_batch_aside, lines, status, reason)
            self._set_aside += 1
            self._state, self._connected = "rejected", True
            self._last_error = self._last_rejected = redact(
                f"the collector rejected a batch ({status}: {reason}); kept in {path}"
            )
            log.error("shipping: %s", self._last_rejected)
            self._advance_past(lines)
            return
        self._state, self._connected = "rejected", False
        hint = " check ship.token" if status in (401, 403) else " check ship.url"
        self._last_error = redact(f"the collector refused ({status}: {reason});{hint}")
        log.error("shipping: %s; trying again in %g s", self._last_error, REFUSED_RETRY_S)
        await asyncio.sleep(REFUSED_RETRY_S)

    def _set_batch_aside(self, lines: list[bytes], status: int, reason: str) -> Path:
        folder = self.directory / REJECTED_DIR
        folder.mkdir(exist_ok=True)
        first, last = _seq_of(lines[0]), _seq_of(lines[-1])
        path = folder / f"{self.agent_id}-{first}-{last}.ndjson"
        path.write_bytes(b"".join(lines))
        path.with_suffix(".reason.txt").write_text(f"HTTP {status}: {redact(reason)}\n", encoding="utf-8")
        return path

    def _advance_past(self, lines: list[bytes]) -> None:
        """After setting a batch aside: move the cursor past exactly those lines (re-read to find the end)."""
        batch = self.spool.read_batch(self._acked, self._acked_seq, len(lines))
        self._advance(batch)

    def _advance(self, batch: Batch) -> None:
        if batch.end is None:
            return
        last_seq = batch.last_seq if batch.last_seq is not None else (self._acked_seq or 0)
        try:
            save_cursor(self.directory, Cursor(self.agent_id, batch.end, last_seq))
        except OSError as exc:  # the ack stands; a crash now only resends this batch
            log.error("cannot save the shipping cursor: %s", exc.strerror)
        self._acked, self._acked_seq = batch.end, last_seq
        self._waiting -= batch.consumed_lines

    async def _recount(self) -> None:
        self._waiting = await asyncio.to_thread(self.spool.count_lines, self._acked)
        self._last_recount = time.monotonic()


def _seq_of(line: bytes) -> str:
    return line[len(b'{"seq":') :].split(b",", 1)[0].decode("ascii", "replace")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no reason given"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or response.reason_phrase)
    return response.reason_phrase


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

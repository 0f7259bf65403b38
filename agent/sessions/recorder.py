"""Stream sessions in the running agent: notices a stream going live and stopping, tags records with the
live session's id, and writes SessionStarted / SessionEnded / SessionSummary records.

No I/O and no clock of its own: the agent calls `before_tick` with each snapshot and its monotonic time,
passes every record through `observe` before emitting it, and calls `close` when it stops. A gap shorter
than `sessions.gap_s` (an encoder reconnecting) stays in the same session.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from agent.models import (
    AlertRecord,
    HealthSnapshot,
    SessionEnded,
    SessionEndReason,
    SessionStarted,
    SessionSummary,
    TickRecord,
    utc_now,
)
from agent.sessions.live import live_origins, target_bitrate_bps
from agent.sessions.summary import SessionAccumulator, expected_ticks

log = logging.getLogger(__name__)


def new_session_id(at: datetime) -> str:
    """Readable and sortable (start time first), unique across agents (random suffix)."""
    return f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class SessionRecorder:
    def __init__(
        self,
        *,
        gap_s: float,
        interval_s: float,
        platform: str,
        configured_kbps: tuple[int | None, int | None] = (None, None),
        run_id: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.gap_s = gap_s
        self.interval_s = interval_s
        self.platform = platform
        self.configured_kbps = configured_kbps
        self.run_id = run_id
        self.current: SessionAccumulator | None = None
        self.last_summary: SessionSummary | None = None
        self._opened_at_s = self._last_tick_s = 0.0
        self._gap_since_s: float | None = None

    @property
    def session_id(self) -> str | None:
        return self.current.started.session_id if self.current is not None else None

    def before_tick(self, snapshot: HealthSnapshot, now_s: float) -> list[BaseModel]:
        """Start or end a session from this snapshot; the records to emit before the tick's own."""
        origins = live_origins(snapshot)
        if self.current is None:
            if not origins:
                return []
            started = SessionStarted(
                session_id=new_session_id(snapshot.taken_at),
                at=snapshot.taken_at,
                origins=origins,
                platform=self.platform,
                target_bitrate_bps=target_bitrate_bps(snapshot, self.configured_kbps),
                tick_interval_s=self.interval_s,
                run_id=self.run_id(),
            )
            self.current, self._gap_since_s = SessionAccumulator(started), None
            self._opened_at_s = self._last_tick_s = now_s
            log.info("stream session %s started (live from %s)", started.session_id, ", ".join(origins))
            return [started]
        if origins:
            self._gap_since_s = None
        elif self._gap_since_s is None:
            self._gap_since_s = now_s
        elif now_s - self._gap_since_s >= self.gap_s:
            detail = f"not live for {now_s - self._gap_since_s:.0f} s (sessions.gap_s = {self.gap_s:g})"
            return self._close(now_s, "stream_stopped", detail, closed_on_tick=True)
        self._last_tick_s = now_s  # this tick will be the session's
        return []

    def observe(self, record: BaseModel) -> BaseModel:
        """Tag a record written while a session is live with its id, and count it into the summary."""
        session = self.current
        if session is None or getattr(record, "session_id", "absent") is not None:
            return record  # no session, a record without the field, or already tagged
        record = record.model_copy(update={"session_id": session.started.session_id})
        if isinstance(record, TickRecord):
            session.add_tick(record.snapshot)
        elif isinstance(record, AlertRecord):
            session.add_alert(record.change)
        return record

    def note_relay_failover(self) -> None:
        """The hook for the relay: it switched to another ingest while this session was live."""
        if self.current is not None:
            self.current.note_relay_failover()

    def close(self, now_s: float, detail: str = "") -> list[BaseModel]:
        """The agent is stopping: end the live session, if any."""
        if self.current is None:
            return []
        return self._close(now_s, "agent_stopped", detail, closed_on_tick=False)

    def live_summary(self) -> SessionSummary | None:
        """The live session's summary so far (for the API), or None."""
        if self.current is None:
            return None
        return self.current.summary(ended_at=None, reason=None, ticks_expected=self.current.ticks_written)

    def _close(self, now_s: float, reason: SessionEndReason, detail: str, *, closed_on_tick: bool) -> list[BaseModel]:
        session = self.current
        assert session is not None
        in_gap = self._gap_since_s is not None
        ended_at = session.last_live_at if in_gap or reason == "stream_stopped" else utc_now()
        ended = SessionEnded(session_id=session.started.session_id, at=ended_at, reason=reason, detail=detail)
        expected = expected_ticks(
            self._opened_at_s, self._last_tick_s, now_s, self.interval_s, closed_on_tick=closed_on_tick
        )
        summary = session.summary(ended_at=ended_at, reason=reason, detail=detail, ticks_expected=expected)
        self.current, self._gap_since_s, self.last_summary = None, None, summary
        log.info(
            "stream session %s ended (%s), health score %s; `streamhealth logs summary %s` shows it",
            summary.session_id,
            reason.replace("_", " "),
            "-" if summary.health_score is None else f"{summary.health_score:.0f}",
            summary.session_id,
        )
        return [ended, summary]

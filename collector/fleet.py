"""The fleet as the collector sees it: each agent's latest full snapshot, its last minute, and contact.

`FleetTracker` follows every agent's stored records incrementally (one indexed read of the few new lines
per agent that shipped since the last look) and keeps, per agent, only the latest tick and a minute of
dropped-frame counters. It is a cache of the store, rebuilt from it at any time, so collectors stay
stateless: a fresh collector reads back the last ~minute of each agent once. Not for the read API's
per-session views (views.py) nor for ingest.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agent.models import Alert, HealthSnapshot, Suggestion
from collector.models import AlertBrief, FleetRow, FleetStreamState, FleetView
from collector.store import AgentRow, Store

BACKFILL_RECORDS = 150  # a minute of 1 Hz ticks plus the alerts and other records between them
DROP_WINDOW_S = 60.0
LOST_AFTER_INTERVALS = 3
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 300.0
REFRESH_MIN_S = 0.5  # requests arriving together share one look at the store
TROUBLE_RANK: dict[FleetStreamState, int] = {"lost_contact": 0, "degraded": 1, "preflight": 2, "live": 3, "offline": 4}
DROP_CAUSES = {
    "network": ("obs", "frames_dropped_network_total"),
    "encoding": ("obs", "frames_skipped_encoding_total"),
    "rendering": ("obs", "frames_missed_rendering_total"),
    "ffmpeg": ("ffmpeg", "drop_frames_total"),
}


@dataclass
class Followed:
    """What the tracker keeps of one agent: small and bounded whatever the agent sends."""

    agent_id: str
    seq: int = 0
    tick_line: str | None = None
    tick: dict[str, Any] | None = None  # the latest tick's snapshot, parsed but not validated (cheap to read)
    tick_at: float | None = None
    session_id: str | None = None
    session_started_at: datetime | None = None
    stopped: bool = False  # its last run ended cleanly (run_stopped after the last tick)
    drops: deque[tuple[float, dict[str, int]]] = field(default_factory=lambda: deque(maxlen=400))
    batch_gaps_s: deque[float] = field(default_factory=lambda: deque(maxlen=11))
    tick_gaps_s: deque[float] = field(default_factory=lambda: deque(maxlen=11))
    last_seen: datetime | None = None
    _snapshot: HealthSnapshot | None = None
    _snapshot_of: str | None = None

    def snapshot(self) -> HealthSnapshot | None:
        """The latest tick's snapshot, validated once per new tick (only when someone asks)."""
        if self.tick_line is None:
            return None
        if self._snapshot_of is not self.tick_line:
            self._snapshot_of = self.tick_line
            try:
                self._snapshot = HealthSnapshot.model_validate(self.tick)
            except ValidationError:
                self._snapshot = None  # a tick this collector cannot read: figures unknown, the row stays
        return self._snapshot

    def interval_s(self) -> float:
        """How often this agent is expected to report: its batches' usual spacing, at least 1 s."""
        gaps = list(self.batch_gaps_s) or list(self.tick_gaps_s)
        usual = statistics.median(gaps) if gaps else MIN_INTERVAL_S
        return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, usual))

    def drops_last_minute(self) -> dict[str, int]:
        if not self.drops:
            return {}
        latest_at, latest = self.drops[-1]
        base = next((totals for at, totals in self.drops if at >= latest_at - DROP_WINDOW_S), latest)
        # A counter that went down restarted (a new stream): what it counted since is all new.
        return {
            cause: value - base[cause] if value >= base.get(cause, value + 1) else value
            for cause, value in latest.items()
        }

    def read(self, line: str, seq: int) -> None:
        self.seq = max(self.seq, seq)
        try:
            record = json.loads(line)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        kind = record.get("type")
        if kind == "run_stopped":
            self.stopped = True
        elif kind == "run_started":
            self.stopped = False
        elif kind == "tick" and isinstance(record.get("snapshot"), dict):
            self._read_tick(line, record)

    def _read_tick(self, line: str, record: dict[str, Any]) -> None:
        snapshot = record["snapshot"]
        try:
            at = datetime.fromisoformat(str(snapshot.get("taken_at"))).timestamp()
        except ValueError:
            return
        if self.tick_at is not None and at > self.tick_at:
            self.tick_gaps_s.append(at - self.tick_at)
        if self.tick_at is not None and at < self.tick_at:
            return  # an older tick arriving late (a resent batch): the latest stays the latest
        self.tick_line, self.tick, self.tick_at, self.stopped = line, snapshot, at, False
        session_id = record.get("session_id")
        if session_id != self.session_id:
            self.session_id = session_id if isinstance(session_id, str) else None
            self.session_started_at = None
        totals: dict[str, int] = {}
        for cause, (source, name) in DROP_CAUSES.items():
            sample = snapshot.get(source)
            value = sample.get(name) if isinstance(sample, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                totals[cause] = value
        self.drops.append((at, totals))
        while self.drops and self.drops[0][0] < at - DROP_WINDOW_S - 5:
            self.drops.popleft()


class FleetTracker:
    def __init__(self, store: Store, *, clock: Any = time.monotonic) -> None:
        self.store = store
        self.followed: dict[str, Followed] = {}
        self.rows: list[AgentRow] = []
        self.read_at: datetime | None = None  # when `rows` were read from the store
        self._clock = clock
        self._refreshed_at = -REFRESH_MIN_S
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if self._clock() - self._refreshed_at < REFRESH_MIN_S:
                return
            rows = await self.store.agents()
            # Silence is measured as of this read: under load the reads below can take seconds, and an
            # agent that reported just before them is not silent for that long.
            self.read_at = datetime.now(UTC)
            # Every read at once: sequential awaits would each wait for a turn of an event loop that is busy
            # with ingest (500 agents took over 30 s that way under load); gathered, the store's reader
            # runs them back to back (SQLite) or side by side (PostgreSQL's pool).
            wanted = [followed for row in rows if (followed := self._note(row)) is not None]
            found = await asyncio.gather(*(self.store.records(f.agent_id, f.seq, 1000) for f in wanted))
            for followed, records in zip(wanted, found, strict=True):
                for seq, line in records:
                    followed.read(line, seq)
            for row in rows:
                if row.last_seq is not None:
                    self.followed[row.agent_id].seq = max(self.followed[row.agent_id].seq, row.last_seq)
            starting = [f for f in self.followed.values() if f.session_id is not None and f.session_started_at is None]
            sessions = await asyncio.gather(*(self.store.session(f.agent_id, f.session_id or "") for f in starting))
            for followed, session in zip(starting, sessions, strict=True):
                followed.session_started_at = session.started_at if session is not None else None
            self.rows = rows
            self._refreshed_at = self._clock()

    def _note(self, row: AgentRow) -> Followed | None:
        """Note the agent's last batch; the agent if it has records we have not read (else None)."""
        followed = self.followed.get(row.agent_id)
        if followed is None:
            followed = self.followed[row.agent_id] = Followed(row.agent_id)
        if followed.last_seen is not None and row.last_seen > followed.last_seen:
            followed.batch_gaps_s.append((row.last_seen - followed.last_seen).total_seconds())
        followed.last_seen = row.last_seen
        if row.last_seq is None or row.last_seq <= followed.seq:
            return None
        # Far behind (first look, or an agent catching up on a backlog): only the last minute matters here.
        followed.seq = max(followed.seq, row.last_seq - BACKFILL_RECORDS)
        return followed

    def latest(self, agent_id: str) -> HealthSnapshot | None:
        followed = self.followed.get(agent_id)
        return followed.snapshot() if followed is not None else None

    def labels(self) -> dict[str, str]:
        """agent_id -> the `agent` label: its name, or name/id-prefix when two agents share a name."""
        names: dict[str, int] = {}
        for row in self.rows:
            names[row.name] = names.get(row.name, 0) + 1
        return {
            row.agent_id: row.name if names[row.name] == 1 else f"{row.name}/{row.agent_id[:8]}" for row in self.rows
        }

    def view(self, now: datetime | None = None) -> FleetView:
        now = now or self.read_at or datetime.now(UTC)
        labels = self.labels()
        rows = [self.row(row, labels[row.agent_id], now) for row in self.rows]
        rows.sort(key=lambda r: (TROUBLE_RANK[r.stream_state], 0 if r.overall == "critical" else 1, r.name))
        alerts = [lost_contact_alert(r) for r in rows if r.stream_state == "lost_contact"]
        return FleetView(taken_at=now, agents=rows, alerts=alerts)

    def row(self, row: AgentRow, label: str, now: datetime) -> FleetRow:
        """One agent's row, read straight from its latest tick's JSON: validating 500 full snapshots every
        second cost more than everything else the fleet view does (the full model is for /metrics and
        the forwarded /health)."""
        followed = self.followed.get(row.agent_id) or Followed(row.agent_id)
        silent_s = max(0.0, (now - row.last_seen).total_seconds())
        interval_s = followed.interval_s()
        lost = silent_s > LOST_AFTER_INTERVALS * interval_s and not followed.stopped
        base: dict[str, Any] = {
            "agent_id": row.agent_id,
            "name": label,
            "agent_stopped": followed.stopped,
            "last_seen": row.last_seen,
            "silent_s": round(silent_s, 3),
            "interval_s": interval_s,
        }
        figures, live, preflight = _figures(followed) if followed.tick is not None else ({}, False, False)
        state: FleetStreamState
        if lost:
            state = "lost_contact"
        elif followed.stopped:
            state = "offline"
        elif live:
            state = "degraded" if figures.get("overall") not in (None, "ok") else "live"
        elif preflight:
            state = "preflight"
        else:
            state = "offline"
        try:
            return FleetRow(stream_state=state, was_live=live, **base, **figures)
        except ValidationError:  # a tick shaped unlike ours: the row without its figures
            return FleetRow(stream_state="lost_contact" if lost else "offline", **base)


def _figures(followed: Followed) -> tuple[dict[str, Any], bool, bool]:
    """The row's figures from the tick's JSON, whether the stream is live, and whether a preflight runs."""
    tick = followed.tick or {}
    agent, obs, ffmpeg = _dict(tick, "agent"), _dict(tick, "obs"), _dict(tick, "ffmpeg")
    network, system, settings = _dict(tick, "network"), _dict(tick, "system"), _dict(_dict(tick, "obs"), "settings")
    ffmpeg_on = (
        bool(ffmpeg) and not ffmpeg.get("ended") and _dict(_dict(tick, "sources"), "ffmpeg").get("state") == "ok"
    )
    streaming = obs.get("streaming") is True
    live = followed.session_id is not None or streaming or ffmpeg_on
    video, audio = _number(settings.get("video_bitrate_kbps")), _number(settings.get("audio_bitrate_kbps"))
    found = tick.get("alerts")
    alerts: list[Any] = found if isinstance(found, list) else []
    worst = None
    if alerts and isinstance(alerts[0], dict):
        try:
            worst = AlertBrief.model_validate(alerts[0])
        except ValidationError:
            worst = None
    figures: dict[str, Any] = {
        "platform": agent.get("platform"),
        "overall": tick.get("overall"),
        "version": agent.get("version"),
        "output_bitrate_bps": (_number(obs.get("output_bitrate_bps")) if streaming else None)
        or (_number(ffmpeg.get("bitrate_bps")) if ffmpeg_on else None),
        "target_bitrate_bps": (video + (audio or 0)) * 1000.0 if video else None,
        "rtt_ms": _number(network.get("ingest_rtt_ms")),
        "loss_ratio": _number(network.get("ingest_loss_ratio")),
        "cpu_ratio": _number(system.get("cpu_usage_ratio")),
        "worst_alert": worst,
        "alerts_active": len(alerts),
        "lines_waiting": _dict(tick, "shipping").get("lines_waiting"),
        "api_url": agent.get("api_url"),
        "taken_at": tick.get("taken_at"),
    }
    if live:
        taken_at = followed.tick_at
        if followed.session_started_at is not None and taken_at is not None:
            figures["live_s"] = max(0.0, taken_at - followed.session_started_at.timestamp())
        elif streaming:
            figures["live_s"] = _number(obs.get("stream_duration_s"))
        figures["dropped_last_minute"] = followed.drops_last_minute()
    jobs = agent.get("jobs_running")
    return figures, live, isinstance(jobs, list) and "preflight" in jobs


def _dict(node: dict[str, Any], key: str) -> dict[str, Any]:
    value = node.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def lost_contact_alert(row: FleetRow) -> Alert:
    """A fleet alert, in the agent's own alert model so the same screens and notifiers show it."""
    every = f"{row.interval_s:.0f} s" if row.interval_s >= 10 else f"{row.interval_s:.1f} s".replace(".0 s", " s")
    return Alert(
        id=f"lost_contact:{row.agent_id}",
        kind="lost_contact",
        severity="critical" if row.was_live else "warning",
        message=f"{row.name} stopped reporting {row.silent_s:.0f} s ago (it reports every {every})"
        + (" while live" if row.was_live else ""),
        since=row.last_seen,
        value=row.silent_s,
        threshold=LOST_AFTER_INTERVALS * row.interval_s,
        suggestions=[
            Suggestion(
                text="Call the streamer, or check the agent's machine and its network",
                why="The agent keeps every record and ships it when it is back; silence means the machine, "
                "its uplink or the agent itself stopped",
            )
        ],
    )

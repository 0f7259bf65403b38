"""A session's summary, built tick by tick in bounded memory: the same code runs in the agent while the
stream is live and in the log reader when a session must be rebuilt (the agent was killed).

How the health score is computed is documented in docs/sessions.md; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.models import (
    AlertChange,
    AlertTally,
    FramesDropped,
    HealthSnapshot,
    OverallState,
    ScorePart,
    SessionEndReason,
    SessionStarted,
    SessionSummary,
    Severity,
    TimeSpan,
    WorstMinute,
)
from agent.sessions.live import live_origins, output_bitrate_bps
from agent.sessions.stats import CounterDelta, QuantileSketch, Running

# Score weights (sum 100) and the drop ratio that scores zero: see docs/sessions.md.
WEIGHT_AVAILABILITY = 35.0
WEIGHT_FRAMES = 25.0
WEIGHT_BITRATE = 20.0
WEIGHT_ALERTS = 20.0
FRAMES_DROPPED_RATIO_AT_ZERO = 0.05
STATE_SCORE: dict[str, float] = {"ok": 1.0, "warning": 0.5, "critical": 0.0}
_STATE_RANK: dict[str, int] = {"ok": 0, "warning": 1, "critical": 2}
# Ticks of a gap waiting to be judged; the agent ends a session after sessions.gap_s, far fewer.
MAX_PENDING_TICKS = 3600


@dataclass
class _ScoreInputs:
    """What the score is computed from, for the whole session or for one minute."""

    ticks: int = 0
    outage_ticks: int = 0
    bitrate_share_sum: float = 0.0
    bitrate_share_count: int = 0
    state_score_sum: float = 0.0
    state_ticks: int = 0  # ticks with a judged state ('starting' is not judged yet)
    frames_dropped: int = 0
    frames_total: int = 0
    worst_state: OverallState = "ok"
    bitrate: Running = field(default_factory=Running)

    def add(self, *, outage: bool, state: OverallState, bitrate_share: float | None, dropped: int, frames: int) -> None:
        self.ticks += 1
        self.outage_ticks += outage
        if state in STATE_SCORE:
            self.state_ticks += 1
            self.state_score_sum += STATE_SCORE[state]
            if _STATE_RANK[state] > _STATE_RANK[self.worst_state]:
                self.worst_state = state
        if bitrate_share is not None:
            self.bitrate_share_sum += bitrate_share
            self.bitrate_share_count += 1
        self.frames_dropped += dropped
        self.frames_total += frames

    def parts(self) -> list[ScorePart]:
        availability = 1 - self.outage_ticks / self.ticks if self.ticks else None
        bitrate = self.bitrate_share_sum / self.bitrate_share_count if self.bitrate_share_count else None
        frames = None
        if self.frames_total:
            ratio = self.frames_dropped / self.frames_total
            frames = max(0.0, 1 - ratio / FRAMES_DROPPED_RATIO_AT_ZERO)
        alerts = self.state_score_sum / self.state_ticks if self.state_ticks else None
        return [
            ScorePart(
                name="availability",
                weight=WEIGHT_AVAILABILITY,
                score=_round(availability),
                detail=f"{self.outage_ticks} of {self.ticks} ticks in an outage",
            ),
            ScorePart(
                name="frames",
                weight=WEIGHT_FRAMES,
                score=_round(frames),
                detail=f"{self.frames_dropped} of {self.frames_total} frames dropped"
                if self.frames_total
                else "no frame counts",
            ),
            ScorePart(
                name="bitrate",
                weight=WEIGHT_BITRATE,
                score=_round(bitrate),
                detail="mean share of the target bitrate sent" if bitrate is not None else "no target bitrate known",
            ),
            ScorePart(
                name="alerts", weight=WEIGHT_ALERTS, score=_round(alerts), detail="ok 1, warning 0.5, critical 0"
            ),
        ]


def health_score(parts: list[ScorePart]) -> float | None:
    """Weighted mean of the measured parts, 0..100; parts nothing measured are left out, not counted as 0."""
    measured = [part for part in parts if part.score is not None]
    weights = sum(part.weight for part in measured)
    if not weights:
        return None
    return round(100 * sum(part.weight * (part.score or 0.0) for part in measured) / weights, 1)


@dataclass
class _DropCause:
    dropped: CounterDelta = field(default_factory=CounterDelta)
    of_frames: CounterDelta = field(default_factory=CounterDelta)


def _drop_readings(snapshot: HealthSnapshot) -> dict[str, tuple[int | None, int | None]]:
    """(frames dropped so far, frames so far) per cause, as the encoder counts them."""
    readings: dict[str, tuple[int | None, int | None]] = {}
    obs = snapshot.obs
    if obs is not None and obs.streaming:
        readings["network"] = (obs.frames_dropped_network_total, obs.frames_output_total)
        readings["encoding_lag"] = (obs.frames_skipped_encoding_total, obs.frames_encoded_total)
        readings["rendering_lag"] = (obs.frames_missed_rendering_total, obs.frames_rendered_total)
    ffmpeg = snapshot.ffmpeg
    if ffmpeg is not None and ffmpeg.frame is not None:
        readings["encoder"] = (ffmpeg.drop_frames_total, ffmpeg.frame)
    return readings


class SessionAccumulator:
    """Everything a summary needs, in a fixed number of counters and sketches, whatever the length."""

    def __init__(self, started: SessionStarted) -> None:
        self.started = started
        self.inputs = _ScoreInputs()
        self.bitrate_sketch = QuantileSketch()
        self.rtt_sketch = QuantileSketch()
        self.jitter_sketch = QuantileSketch()
        self.loss = Running()
        self.cpu = Running()
        self.drops: dict[str, _DropCause] = {}
        self.alerts: dict[tuple[str, Severity], int] = {}
        self.encoder_reconnects = 0
        self.relay_failovers = 0
        self.held_s = 0.0
        self._held_reading: float | None = None
        self.outage_s = 0.0
        self.longest_outage: TimeSpan | None = None
        self._outage_start: datetime | None = None
        self._last_tick_at: datetime | None = None
        self._first_tick_at: datetime | None = None
        self._pending: deque[tuple[HealthSnapshot, int, int]] = deque()
        self._delivering = False  # the encoder has sent bytes: from then on 0 bit/s is an outage
        self._minute_start: datetime | None = None
        self._minute = _ScoreInputs()
        self.worst_minute: WorstMinute | None = None
        self.last_live_at: datetime = started.at

    # --- feeding ---------------------------------------------------------------------------------

    def add_tick(self, snapshot: HealthSnapshot) -> None:
        """One tick of the session. Ticks that are not live wait: if the stream comes back they were an
        outage (and a reconnect); if the session ends they were the stream stopping, not an outage."""
        self._first_tick_at = self._first_tick_at or snapshot.taken_at
        self._last_tick_at = snapshot.taken_at
        counts = self._count_frames(snapshot)  # frames are counted at once: they are facts either way
        self._count_held(snapshot)
        if not live_origins(snapshot):
            self._pending.append((snapshot, *counts))
            if len(self._pending) > MAX_PENDING_TICKS:  # only when rebuilding a log with no end: bounded
                self._apply(*self._pending.popleft(), live=False)
            return
        if self._pending:
            self.encoder_reconnects += 1  # live again within the gap: the same session, one reconnect
            while self._pending:
                self._apply(*self._pending.popleft(), live=False)
        self.last_live_at = snapshot.taken_at
        self._apply(snapshot, *counts, live=True)

    @property
    def ticks_written(self) -> int:
        return self.inputs.ticks + len(self._pending)

    def _count_frames(self, snapshot: HealthSnapshot) -> tuple[int, int]:
        """Feed the drop counters; (frames dropped, frames sent) since the last tick, all causes."""
        dropped = frames = 0
        for cause, (dropped_total, frames_total) in _drop_readings(snapshot).items():
            counters = self.drops.setdefault(cause, _DropCause())
            before = (counters.dropped.total, counters.of_frames.total)
            if dropped_total is not None:
                counters.dropped.add(dropped_total)
            if frames_total is not None:
                counters.of_frames.add(frames_total)
            dropped += counters.dropped.total - before[0]
            frames = max(frames, counters.of_frames.total - before[1])
        return dropped, frames

    def _count_held(self, snapshot: HealthSnapshot) -> None:
        """The relay's held time (per broadcast, back to 0 at the next one), summed over the session. The
        first reading counts only if it is a hold in progress: an earlier broadcast's is not this session's."""
        relay = snapshot.relay
        if relay is None:
            return
        value, last = relay.held_total_s, self._held_reading
        if last is None:
            self.held_s += value if relay.holding else 0.0
        else:
            self.held_s += value - last if value >= last else value
        self._held_reading = value

    def _apply(self, snapshot: HealthSnapshot, dropped: int, frames: int, *, live: bool) -> None:
        at = snapshot.taken_at
        bitrate = output_bitrate_bps(snapshot) if live else 0.0
        if live and bitrate == 0.0 and not self._delivering:
            bitrate = None  # OBS's first reading, before its first bytes: not measured yet, not an outage
        self._delivering = self._delivering or bool(bitrate)
        if bitrate is not None:
            self.inputs.bitrate.add(bitrate)
            self.bitrate_sketch.add(bitrate)
        target = self.started.target_bitrate_bps
        share = min(1.0, bitrate / target) if bitrate is not None and target else None
        outage = not live or bitrate == 0.0
        self._track_outage(at, outage)

        network = snapshot.network
        if network is not None:
            if network.ingest_rtt_ms is not None:
                self.rtt_sketch.add(network.ingest_rtt_ms)
            if network.ingest_jitter_ms is not None:
                self.jitter_sketch.add(network.ingest_jitter_ms)
            if network.ingest_loss_ratio is not None:
                self.loss.add(network.ingest_loss_ratio)
        if snapshot.system is not None:
            self.cpu.add(snapshot.system.cpu_usage_ratio)

        self.inputs.add(outage=outage, state=snapshot.overall, bitrate_share=share, dropped=dropped, frames=frames)
        self._add_to_minute(
            at, bitrate, outage=outage, state=snapshot.overall, share=share, dropped=dropped, frames=frames
        )

    def add_alert(self, change: AlertChange) -> None:
        if change.change == "raised":
            key = (change.alert.kind, change.alert.severity)
            self.alerts[key] = self.alerts.get(key, 0) + 1

    def note_relay_failover(self) -> None:
        self.relay_failovers += 1

    def _track_outage(self, at: datetime, outage: bool) -> None:
        if outage and self._outage_start is None:
            self._outage_start = at
        elif not outage and self._outage_start is not None:
            self._close_outage(at)

    def _close_outage(self, end: datetime) -> None:
        if self._outage_start is None:
            return
        duration_s = (end - self._outage_start).total_seconds()
        self.outage_s += duration_s
        if self.longest_outage is None or duration_s > self.longest_outage.duration_s:
            self.longest_outage = TimeSpan(start=self._outage_start, end=end, duration_s=round(duration_s, 3))
        self._outage_start = None

    def _add_to_minute(
        self,
        at: datetime,
        bitrate: float | None,
        *,
        outage: bool,
        state: OverallState,
        share: float | None,
        dropped: int,
        frames: int,
    ) -> None:
        minute = at.astimezone(UTC).replace(second=0, microsecond=0)
        if self._minute_start != minute:
            self._finish_minute()
            self._minute_start, self._minute = minute, _ScoreInputs()
        self._minute.add(outage=outage, state=state, bitrate_share=share, dropped=dropped, frames=frames)
        if bitrate is not None:
            self._minute.bitrate.add(bitrate)

    def _finish_minute(self) -> None:
        if self._minute_start is None or not self._minute.ticks:
            return
        score = health_score(self._minute.parts())
        if score is None:
            return
        if self.worst_minute is None or score < self.worst_minute.score:
            self.worst_minute = WorstMinute(
                start=self._minute_start,
                score=score,
                worst_state=self._minute.worst_state,
                mean_output_bitrate_bps=_round(self._minute.bitrate.mean, 0),
                frames_dropped=self._minute.frames_dropped,
            )

    # --- reading ---------------------------------------------------------------------------------

    def summary(
        self,
        *,
        ended_at: datetime | None,
        reason: SessionEndReason | None,
        detail: str = "",
        ticks_expected: int | None = None,
        reconstructed: bool = False,
    ) -> SessionSummary:
        """The summary so far (`ended_at` None: the session is still live). Does not change the state,
        so a live session can be summarised on every API request."""
        started = self.started
        end = ended_at or self.last_live_at
        worst_minute = self._peek_worst_minute()
        outage_s, longest = self._peek_outage(end)
        if ticks_expected is None:
            ticks_expected = self.ticks_expected_from_log()
        # Frames of a trailing gap (the encoder's last reports) count; its ticks are not an outage.
        inputs = dataclasses.replace(self.inputs)
        for _, dropped, frames in self._pending:
            inputs.frames_dropped += dropped
            inputs.frames_total += frames
        parts = inputs.parts()
        return SessionSummary(
            session_id=started.session_id,
            status="ended" if ended_at is not None else "live",
            started_at=started.at,
            ended_at=ended_at,
            end_reason=reason,
            end_detail=detail,
            reconstructed=reconstructed,
            live_s=round(max(0.0, (end - started.at).total_seconds()), 3),
            origins=started.origins,
            platform=started.platform,
            target_bitrate_bps=started.target_bitrate_bps,
            output_bitrate_mean_bps=_round(self.inputs.bitrate.mean, 0),
            output_bitrate_min_bps=_round(self.inputs.bitrate.min, 0),
            output_bitrate_p5_bps=_round(self.bitrate_sketch.quantile(0.05), 0),
            frames_dropped=[
                FramesDropped(
                    cause=cause,
                    frames=counters.dropped.total,
                    of_frames=counters.of_frames.total,
                    ratio=_round(counters.dropped.total / counters.of_frames.total, 6)
                    if counters.of_frames.total
                    else None,
                )
                for cause, counters in sorted(self.drops.items())
            ],
            encoder_reconnects=self.encoder_reconnects,
            relay_failovers=self.relay_failovers,
            held_s=round(self.held_s, 1),
            rtt_p50_ms=_round(self.rtt_sketch.quantile(0.5), 2),
            rtt_p95_ms=_round(self.rtt_sketch.quantile(0.95), 2),
            jitter_p95_ms=_round(self.jitter_sketch.quantile(0.95), 2),
            loss_mean_ratio=_round(self.loss.mean, 6),
            loss_max_ratio=_round(self.loss.max, 6),
            cpu_mean_ratio=_round(self.cpu.mean, 4),
            cpu_max_ratio=_round(self.cpu.max, 4),
            alerts=[
                AlertTally(kind=kind, severity=severity, raised=count)
                for (kind, severity), count in sorted(self.alerts.items())
            ],
            alerts_raised=sum(self.alerts.values()),
            worst_state=self.inputs.worst_state,
            longest_outage=longest,
            outage_s=round(outage_s, 3),
            worst_minute=worst_minute,
            health_score=health_score(parts),
            health_parts=parts,
            ticks_written=self.ticks_written,
            ticks_expected=ticks_expected,
            run_id=started.run_id,
        )

    def ticks_expected_from_log(self) -> int:
        """Tick slots from the first to the last tick seen: what a reader of the log can prove."""
        if self._first_tick_at is None or self._last_tick_at is None:
            return 0
        span_s = (self._last_tick_at - self._first_tick_at).total_seconds()
        return round(span_s / self.started.tick_interval_s) + 1

    def _peek_worst_minute(self) -> WorstMinute | None:
        saved = self.worst_minute
        self._finish_minute()
        worst, self.worst_minute = self.worst_minute, saved
        return worst

    def _peek_outage(self, end: datetime) -> tuple[float, TimeSpan | None]:
        if self._outage_start is None:
            return self.outage_s, self.longest_outage
        saved = (self.outage_s, self.longest_outage, self._outage_start)
        self._close_outage(end)
        result = (self.outage_s, self.longest_outage)
        self.outage_s, self.longest_outage, self._outage_start = saved
        return result


def expected_ticks(opened_at_s: float, last_tick_s: float, closed_at_s: float, interval_s: float, *,
                   closed_on_tick: bool) -> int:  # fmt: skip
    """Tick slots from the session's first tick to its close (monotonic seconds).

    Closed on a tick (the gap ran out): that tick is not the session's, so the slots are [open, close).
    Closed between ticks (the agent stopped): every slot up to the last tick written, and at least every
    slot that came due a whole interval before the stop (the one due just before it may still have been
    on its way, so it counts only if it was written)."""
    if closed_on_tick:
        return round((closed_at_s - opened_at_s) / interval_s)
    written_up_to = round((last_tick_s - opened_at_s) / interval_s) + 1
    due_before_stop = math.floor((closed_at_s - opened_at_s) / interval_s)
    return max(written_up_to, due_before_stop)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)

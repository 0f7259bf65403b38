"""A session's summary from chosen ticks: bitrate figures, outages, the worst minute, the score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.models import (
    AgentInfo,
    Alert,
    AlertChange,
    FfmpegSample,
    HealthSnapshot,
    NetworkSample,
    SessionStarted,
    SourceStatus,
)
from agent.sessions.summary import SessionAccumulator, expected_ticks, health_score
from tests.agent.helpers import system_sample

T0 = datetime(2026, 11, 25, 20, 0, 0, tzinfo=UTC)
INFO = AgentInfo(version="0", pid=1, started_at=T0, uptime_s=0, platform="twitch")


def _snapshot(second: int, *, bitrate: float | None, frame: int, drops: int = 0, rtt: float = 40.0, cpu: float = 0.3,
              overall: str = "ok") -> HealthSnapshot:  # fmt: skip
    at = T0 + timedelta(seconds=second)
    live = bitrate is not None
    return HealthSnapshot(
        taken_at=at,
        agent=INFO,
        overall=overall,  # type: ignore[arg-type]
        sources={"ffmpeg": SourceStatus(name="ffmpeg", state="ok" if live else "stale")},
        ffmpeg=FfmpegSample(
            taken_at=at, frame=frame, bitrate_bps=bitrate, drop_frames_total=drops, out_time_s=second + 1
        ),
        network=NetworkSample(taken_at=at, ingest_rtt_ms=rtt, ingest_jitter_ms=rtt / 10, ingest_loss_ratio=0.0),
        system=system_sample(cpu=cpu, taken_at=at),
    )


def _started(target: float | None = 3_000_000) -> SessionStarted:
    return SessionStarted(
        session_id="s1", at=T0, origins=["ffmpeg"], platform="twitch", target_bitrate_bps=target, tick_interval_s=1.0
    )


def test_a_clean_stream_scores_100_with_exact_bitrate_figures() -> None:
    session = SessionAccumulator(_started())
    for second in range(120):
        session.add_tick(_snapshot(second, bitrate=3_000_000 + 1000 * (second % 10), frame=30 * (second + 1)))
    summary = session.summary(ended_at=T0 + timedelta(seconds=120), reason="stream_stopped")
    assert summary.output_bitrate_min_bps == 3_000_000
    assert summary.output_bitrate_mean_bps == 3_004_500
    assert summary.output_bitrate_p5_bps is not None
    assert abs(summary.output_bitrate_p5_bps - 3_000_000) <= 0.01 * 3_000_000
    assert summary.rtt_p50_ms is not None and abs(summary.rtt_p50_ms - 40) <= 0.4
    assert summary.cpu_mean_ratio == 0.3 and summary.cpu_max_ratio == 0.3
    assert summary.health_score == 100.0
    assert summary.ticks_written == summary.ticks_expected == 120
    assert summary.longest_outage is None and summary.encoder_reconnects == 0


def test_an_outage_in_the_middle_is_measured_and_lowers_the_score_and_marks_the_worst_minute() -> None:
    session = SessionAccumulator(_started())
    frame = 0
    for second in range(180):
        down = 70 <= second < 82  # 12 s without the encoder, inside the second minute
        frame += 0 if down else 30
        session.add_tick(
            _snapshot(second, bitrate=None if down else 3_000_000, frame=frame, overall="critical" if down else "ok")
        )
    summary = session.summary(ended_at=T0 + timedelta(seconds=180), reason="agent_stopped")
    assert summary.encoder_reconnects == 1
    assert summary.longest_outage is not None
    assert summary.longest_outage.start == T0 + timedelta(seconds=70)
    assert summary.longest_outage.duration_s == 12
    assert summary.output_bitrate_min_bps == 0 and summary.output_bitrate_p5_bps == 0
    assert summary.worst_minute is not None and summary.worst_minute.start == T0 + timedelta(minutes=1)
    assert summary.worst_minute.worst_state == "critical"
    parts = {part.name: part.score for part in summary.health_parts}
    assert parts["availability"] == round(1 - 12 / 180, 3)
    assert summary.health_score is not None and summary.health_score < 100
    assert summary.worst_minute.score < summary.health_score


def test_drops_score_and_a_missing_target_leaves_the_bitrate_part_out() -> None:
    session = SessionAccumulator(_started(target=None))
    for second in range(60):
        session.add_tick(_snapshot(second, bitrate=2_000_000, frame=100 * (second + 1), drops=second))  # 59 of 6000
    summary = session.summary(ended_at=T0 + timedelta(seconds=60), reason="stream_stopped")
    parts = {part.name: part for part in summary.health_parts}
    assert parts["bitrate"].score is None
    assert parts["frames"].score == round(1 - (59 / 6000) / 0.05, 3)
    expected = 100 * (35 * 1 + 25 * parts["frames"].score + 20 * 1) / (35 + 25 + 20)  # type: ignore[operator]
    assert summary.health_score == round(expected, 1)
    assert health_score([]) is None


def test_alerts_are_tallied_by_kind_and_severity() -> None:
    session = SessionAccumulator(_started())
    alert = Alert(id="a", kind="ingest_loss", severity="warning", message="m", since=T0)
    for change in ("raised", "updated", "cleared", "raised"):
        session.add_alert(AlertChange(change=change, alert=alert))  # type: ignore[arg-type]
    session.add_alert(AlertChange(change="raised", alert=alert.model_copy(update={"severity": "critical"})))
    summary = session.summary(ended_at=T0, reason="stream_stopped")
    assert [(t.kind, t.severity, t.raised) for t in summary.alerts] == [
        ("ingest_loss", "critical", 1),
        ("ingest_loss", "warning", 2),
    ]
    assert summary.alerts_raised == 3


def test_expected_ticks_at_a_stop_count_every_slot_due_and_catch_a_stalled_tick_loop() -> None:
    # Ticks at 0..5 s written, stopped 2 ms after the last: 6 expected.
    assert expected_ticks(0.0, 5.0, 5.002, 1.0, closed_on_tick=False) == 6
    # Stopped 0.9 s later: the slot at 6 s may still have been on its way, not counted against us.
    assert expected_ticks(0.0, 5.0, 5.9, 1.0, closed_on_tick=False) == 6
    # The tick loop stalled after 5 s and the agent stopped at 12.5 s: slots 6..11 were due and missing.
    assert expected_ticks(0.0, 5.0, 12.5, 1.0, closed_on_tick=False) == 12
    # A gap ran out on the tick at 20 s: ticks 0..19 are the session's.
    assert expected_ticks(0.0, 19.0, 20.0, 1.0, closed_on_tick=True) == 20


def test_nothing_sent_yet_at_the_start_of_a_stream_is_not_an_outage_but_nothing_sent_later_is() -> None:
    session = SessionAccumulator(_started())
    for second in range(30):
        bitrate = 0.0 if second < 2 or 20 <= second < 23 else 3_000_000  # OBS's first readings say 0
        session.add_tick(_snapshot(second, bitrate=bitrate, frame=30 * (second + 1)))
    summary = session.summary(ended_at=T0 + timedelta(seconds=30), reason="stream_stopped")
    assert summary.longest_outage is not None
    assert summary.longest_outage.start == T0 + timedelta(seconds=20) and summary.outage_s == 3
    assert summary.output_bitrate_min_bps == 0  # the later zeros count, the starting ones do not
    assert summary.ticks_written == 30

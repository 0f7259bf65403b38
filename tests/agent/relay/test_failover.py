"""The failover decisions without sockets: the stall rule, the ingest rotation, the sent ledger, resuming
the queue at a keyframe, and a switch as an alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from agent.models import IngestSwitch
from agent.relay.alerts import switch_alert
from agent.relay.failover import AckWatch, IngestRotation, Outage, SentLedger
from agent.relay.frames import Frame, FrameKind
from agent.relay.queue import DropReason, MediaQueue
from agent.rtmp import messages as m


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stall_rule_fires_only_when_data_waits_and_nothing_is_acknowledged_for_stall_s() -> None:
    watch = AckWatch(3.0, 0.0)
    assert not watch.observe(1000, True, 0.0)
    assert not watch.observe(1000, True, 2.9)
    assert watch.observe(1000, True, 3.1)
    assert not watch.observe(2000, True, 3.2)  # progress resets it
    assert not watch.observe(2000, False, 9.0)  # nothing waiting: an idle connection is not stalled
    assert not watch.observe(2000, True, 11.0)
    assert watch.observe(2000, True, 12.1)


def test_stall_rule_dates_progress_by_the_kernels_last_ack_not_by_when_it_looked() -> None:
    """The watch looks every half second; the kernel says the last ACK came 0.4 s before this look, so the
    stall is due 3 s after that ACK (at 3.1), not 3 s after the look (3.5)."""
    watch = AckWatch(3.0, 0.0)
    assert not watch.observe(1000, True, 0.0)
    assert not watch.observe(5000, True, 0.5, ack_age_s=0.4)
    assert watch.stalled_at_s == 3.1
    assert not watch.observe(5000, True, 3.0, ack_age_s=2.9)
    assert watch.observe(5000, True, 3.15, ack_age_s=3.05)
    # An age older than the last progress seen never moves it back; a negative one never moves it ahead of now.
    watch = AckWatch(3.0, 0.0)
    watch.observe(1000, True, 10.0)
    watch.observe(2000, True, 10.5, ack_age_s=5.0)
    assert watch.stalled_at_s == 13.0
    watch.observe(3000, True, 11.0, ack_age_s=-1.0)
    assert watch.stalled_at_s == 14.0


def test_a_first_attempt_to_a_silent_ingest_waits_stall_s_when_there_is_a_backup() -> None:
    clock = Clock()
    two = IngestRotation(["rtmp://a.example/live/k", "rtmp://b.example/live/k"], 3.0, clock)
    assert two.attempt_timeout_s(10.0, 2.0) == 2.0
    assert IngestRotation(["rtmp://a.example/live/k"], 3.0, clock).attempt_timeout_s(10.0, 2.0) == 10.0
    two.failed()
    clock.now += 2.8
    assert two.attempt_timeout_s(10.0, 2.0) == 0.5  # what is left (0.2 s), but at least MIN_ATTEMPT_S


def test_rotation_retries_with_backoff_then_moves_round_the_list_after_failover_after_s() -> None:
    clock = Clock()
    rotation = IngestRotation(
        ["rtmp://a.example:1935/live/k1", "rtmps://b.example/live/k2", "rtmp://c.example:1936/x/k3"],
        3.0,
        clock,
        random_fraction=lambda: 0.0,  # no jitter: the figures are the backoff's ceilings
    )
    assert rotation.names == ["a.example:1935", "b.example:443", "c.example:1936"]
    assert not rotation.choose() and rotation.delay_s() == 0
    rotation.failed()
    assert rotation.delay_s() == 0.25
    rotation.failed()
    assert rotation.delay_s() == 0.5
    clock.now += 2.8
    assert rotation.delay_s() <= 0.2 + 1e-9  # never waits past the moment to fail over
    assert not rotation.choose()
    clock.now += 0.3
    assert rotation.choose() and rotation.index == 1 and rotation.on_backup
    assert rotation.delay_s() == 0  # the next ingest is tried at once
    rotation.failed()
    clock.now += 3.1
    assert rotation.choose() and rotation.index == 2
    rotation.failed()
    clock.now += 3.1
    assert rotation.choose() and rotation.index == 0  # round the list
    rotation.go_to(2)
    rotation.succeeded()
    clock.now += 60
    assert not rotation.choose() and rotation.index == 2  # stays on the backup while it works
    rotation.restart()
    assert rotation.index == 0


def test_a_single_ingest_is_retried_with_capped_backoff_forever() -> None:
    rotation = IngestRotation(["rtmp://a.example/live/k"], 3.0, Clock())
    for _ in range(20):
        rotation.failed()
        assert not rotation.choose()
    assert 5.0 <= rotation.delay_s() <= 10.0  # capped at 10 s, jittered down by up to half


def test_ledger_knows_which_frames_the_ingest_never_acknowledged() -> None:
    ledger = SentLedger()
    for index in range(5):
        ledger.wrote((index + 1) * 100, index * 33, media=True)
    ledger.acked(250)
    assert ledger.last_acked_media_ms == 33
    assert ledger.unacknowledged() == [66, 99, 132]


def _frame(kind: FrameKind, ts: int) -> Frame:
    type_id = m.AUDIO if kind is FrameKind.AUDIO else m.VIDEO
    return Frame(type_id, ts, b"x" * 100, kind, "avc")


def test_resuming_drops_media_up_to_the_oldest_queued_keyframe_and_counts_it() -> None:
    queue = MediaQueue()
    frames = [
        _frame(FrameKind.VIDEO_INTER, 0),
        _frame(FrameKind.AUDIO, 10),
        _frame(FrameKind.SEQUENCE_HEADER, 20),
        _frame(FrameKind.VIDEO_KEY, 33),
        _frame(FrameKind.AUDIO, 40),
        _frame(FrameKind.VIDEO_INTER, 66),
    ]
    for frame in frames:
        queue.push(frame)
    dropped = queue.drop_until_keyframe()
    assert dropped == frames[:2]
    assert queue.dropped[DropReason.INGEST_LOST] == 2
    assert [queue.pop() for _ in range(4)] == frames[2:]


def test_resuming_without_a_queued_keyframe_waits_for_the_next_one() -> None:
    queue = MediaQueue()
    queue.push(_frame(FrameKind.VIDEO_INTER, 0))
    queue.drop_until_keyframe()
    queue.push(_frame(FrameKind.VIDEO_INTER, 33))
    assert len(queue) == 0
    queue.push(_frame(FrameKind.VIDEO_KEY, 66))
    assert len(queue) == 1


def test_a_holding_queue_keeps_whole_gops_within_its_bound_while_no_ingest_takes_them() -> None:
    queue = MediaQueue()
    queue.holding = True
    for index in range(300):  # 10 s at 30 fps, a keyframe a second
        queue.push(_frame(FrameKind.VIDEO_KEY if index % 30 == 0 else FrameKind.VIDEO_INTER, index * 33))
    assert queue.dropped[DropReason.UNTIL_KEYFRAME] == 0  # no congestion drops: GOPs stay whole
    assert queue.duration_ms <= queue.limits.max_ms
    first = queue.peek()
    assert first is not None and first.kind is FrameKind.VIDEO_KEY


def test_a_switch_is_an_alert_with_its_timestamps_and_losses_and_no_key() -> None:
    switch = IngestSwitch(
        destination="a.example:1935",
        kind="failover",
        from_ingest="a.example:1935",
        to_ingest="b.example:1935",
        reason="the ingest closed the connection",
        lost_at=datetime(2026, 1, 1, 20, 0, 0, 120000, tzinfo=UTC),
        at=datetime(2026, 1, 1, 20, 0, 3, 450000, tzinfo=UTC),
        outage_ms=3330,
        lost_media_ms=420,
        lost_frames=19,
    )
    alert = switch_alert(switch)
    assert alert.severity == "critical"
    assert "failed over to b.example:1935 at 20:00:03.450 UTC" in alert.message
    assert "losing a.example:1935 at 20:00:00.120 UTC" in alert.message
    assert "lost 420 ms of media (19 frames)" in alert.message
    assert alert.since == switch.lost_at


def test_the_agent_turns_each_switch_into_an_alert_record(tmp_path: Path) -> None:
    from agent.models import RelaySample
    from agent.runtime import Agent
    from tests.agent.helpers import make_settings

    lines: list[str] = []

    class Sink:
        def write_line(self, line: str) -> None:
            lines.append(line)

    agent = Agent(make_settings(tmp_path))
    agent.sinks.append(Sink())  # type: ignore[arg-type]
    switch = IngestSwitch(
        destination="a:1935", kind="reconnect", from_ingest="a:1935", to_ingest="a:1935", reason="reset",
        lost_at=datetime.now(UTC), at=datetime.now(UTC), outage_ms=250, lost_media_ms=0, lost_frames=0,
    )  # fmt: skip
    agent.publish("relay", RelaySample(listen="127.0.0.1:1935", ingest_switches=[switch, switch]))
    records = [json.loads(line) for line in lines if '"type":"alert"' in line]
    assert len(records) == 2
    assert records[0]["change"]["alert"]["kind"] == "ingest_switched"
    assert "reconnected to a:1935" in records[0]["change"]["alert"]["message"]


def test_the_gop_in_flight_goes_back_to_the_head_so_the_next_connection_resumes_at_its_keyframe() -> None:
    queue = MediaQueue()
    queue.holding = True
    gop = [_frame(FrameKind.VIDEO_KEY, 0), _frame(FrameKind.AUDIO, 10), _frame(FrameKind.VIDEO_INTER, 33)]
    queue.push(_frame(FrameKind.VIDEO_INTER, 66))  # came in while the connection died
    queue.requeue_front(gop)
    assert queue.drop_until_keyframe() == []
    assert [queue.pop() for _ in range(4)] == [*gop, _frame(FrameKind.VIDEO_INTER, 66)]
    assert queue.size_bytes == 0


def test_an_outage_record_counts_unacknowledged_and_dropped_frames_and_the_media_between() -> None:
    clock = Clock()
    outage = Outage(
        from_index=0, reason="reset", lost_at_s=clock.now, lost_at=datetime.now(UTC), dropped_before=5,
        unacked_ms=[1000, 1033], last_acked_media_ms=966,
    )  # fmt: skip
    names = ["a:1935", "b:1935"]
    switch = outage.switch(destination="a:1935", names=names, to_index=1, dropped_now=8, resume_ms=2000, now_s=101.5)
    assert (switch.kind, switch.to_ingest, switch.lost_frames, switch.lost_media_ms) == ("failover", "b:1935", 5, 1034)
    assert switch.outage_ms == 1500
    clean = Outage(0, "reset", 100.0, datetime.now(UTC), 0, [], 966)
    assert clean.switch(destination="a", names=names, to_index=0, dropped_now=0, resume_ms=2000, now_s=100.2).kind == (
        "reconnect"
    )

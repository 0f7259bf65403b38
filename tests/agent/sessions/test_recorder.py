"""Sessions in the running agent: going live, a short gap kept, a long gap ending it, records tagged."""

from __future__ import annotations

import json
from pathlib import Path

from agent.history import History
from agent.models import (
    Alert,
    AlertChange,
    FfmpegSample,
    HealthSnapshot,
    JobFinished,
    ObsSample,
    RelaySample,
    SourceStateRecord,
    SourceStatus,
    utc_now,
)
from agent.runtime import Agent
from tests.agent.helpers import make_settings, system_sample


class CpuRule:
    """Raises a critical alert while CPU is above 0.9 (enough to see alerts tagged and counted)."""

    def __init__(self) -> None:
        self.alert: Alert | None = None

    def evaluate(
        self, snapshot: HealthSnapshot, history: History, monotonic_s: float | None = None
    ) -> list[AlertChange]:
        cpu = snapshot.system.cpu_usage_ratio if snapshot.system else 0.0
        if cpu > 0.9 and self.alert is None:
            self.alert = Alert(id="cpu", kind="cpu_high", severity="critical", message="CPU", since=utc_now())
            return [AlertChange(change="raised", alert=self.alert)]
        if cpu <= 0.9 and self.alert is not None:
            cleared, self.alert = self.alert.model_copy(update={"cleared_at": utc_now()}), None
            return [AlertChange(change="cleared", alert=cleared)]
        return []

    def active_alerts(self) -> list[Alert]:
        return [self.alert] if self.alert else []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """An agent with no sources of its own, a fake monotonic clock, and its records collected."""

    def __init__(self, tmp_path: Path, gap_s: float = 5) -> None:
        self.clock = Clock()
        settings = make_settings(tmp_path, sessions__gap_s=str(gap_s), stream__video_bitrate_kbps="2000")
        self.agent = Agent(settings, [], rules=CpuRule(), clock=self.clock)
        self.lines: list[dict[str, object]] = []
        self.agent.sinks.append(type("Sink", (), {"write_line": lambda _, line: self.lines.append(json.loads(line))})())
        self.frame = 0

    def tick(self, *, ffmpeg: bool = True, cpu: float = 0.2, drops: int = 0, ended: bool = False) -> None:
        """One second: ffmpeg reports 30 frames (if it runs), then the agent ticks."""
        self.clock.now += 1.0
        self.agent.publish("system", system_sample(cpu=cpu))
        if ffmpeg:
            self.frame += 30
            sample = FfmpegSample(
                frame=self.frame, out_time_s=self.frame / 30, bitrate_bps=2e6, drop_frames_total=drops, ended=ended
            )
            self.agent.publish("ffmpeg", sample)
        self.agent.tick()

    def of_type(self, kind: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line["type"] == kind]


async def test_a_stream_going_live_starts_a_session_and_its_records_carry_the_id(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.tick(ffmpeg=False)
    assert h.agent.sessions.session_id is None
    h.tick()
    h.tick(cpu=0.95)
    h.tick()
    started = h.of_type("session_started")
    assert len(started) == 1 and started[0]["origins"] == ["ffmpeg"] and started[0]["target_bitrate_bps"] == 2_000_000
    session_id = started[0]["session_id"]
    ticks = h.of_type("tick")
    assert [tick["session_id"] for tick in ticks] == [None, session_id, session_id, session_id]
    assert [alert["session_id"] for alert in h.of_type("alert")] == [session_id, session_id]
    # The start record comes before the first tick of the session.
    assert h.lines.index(started[0]) < h.lines.index(ticks[1])


async def test_a_gap_shorter_than_gap_s_is_one_session_with_a_reconnect(tmp_path: Path) -> None:
    h = Harness(tmp_path, gap_s=5)
    for _ in range(3):
        h.tick()
    h.agent._latest.pop("ffmpeg")  # ffmpeg went away: its sample is gone ...
    for _ in range(3):
        h.tick(ffmpeg=False)
    h.tick()  # ... and came back within 5 s
    h.tick()
    assert len(h.of_type("session_started")) == 1
    assert h.of_type("session_ended") == []
    summary = h.agent.sessions.live_summary()
    assert summary is not None and summary.status == "live"
    assert summary.encoder_reconnects == 1
    assert summary.longest_outage is not None and summary.ticks_written == 8


async def test_a_gap_longer_than_gap_s_ends_the_session_at_the_last_live_tick(tmp_path: Path) -> None:
    h = Harness(tmp_path, gap_s=5)
    for second in range(10):
        h.tick(drops=second)
    h.tick(drops=10, ended=True)  # ffmpeg said progress=end; its last report counts
    last_live = h.of_type("tick")[-2]
    for _ in range(8):
        h.tick(ffmpeg=False)
    ended = h.of_type("session_ended")
    assert len(ended) == 1 and ended[0]["reason"] == "stream_stopped"
    assert ended[0]["at"] == last_live["snapshot"]["taken_at"]  # type: ignore[index]
    summary = h.of_type("session_summary")[0]
    assert summary["end_reason"] == "stream_stopped"
    # The trailing gap is the stream stopping, not an outage.
    assert summary["longest_outage"] is None and summary["encoder_reconnects"] == 0
    # 10 live ticks, then the gap from the 11th (progress=end) until 5 s later: ticks 11..15 are the session's.
    assert summary["ticks_written"] == summary["ticks_expected"] == 15
    assert summary["frames_dropped"] == [
        {"cause": "encoder", "frames": 10, "of_frames": 330, "ratio": round(10 / 330, 6)}
    ]
    tagged = [tick for tick in h.of_type("tick") if tick["session_id"] == ended[0]["session_id"]]
    assert len(tagged) == summary["ticks_written"]
    assert h.of_type("tick")[-1]["session_id"] is None  # after the end, nothing is tagged
    assert h.agent.sessions.session_id is None


async def test_stopping_the_agent_ends_the_live_session_with_its_summary(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    for _ in range(4):
        h.tick()
    h.clock.now += 0.5
    await h.agent.stop("received SIGTERM")
    kinds = [line["type"] for line in h.lines]
    assert kinds[-3:] == ["session_ended", "session_summary", "run_stopped"]
    summary = h.of_type("session_summary")[0]
    assert summary["end_reason"] == "agent_stopped" and summary["end_detail"] == "received SIGTERM"
    assert summary["ticks_written"] == summary["ticks_expected"] == 4


async def test_obs_streaming_starts_a_session_and_obs_reconnecting_is_a_gap(tmp_path: Path) -> None:
    h = Harness(tmp_path, gap_s=30)

    def obs(streaming: bool, reconnecting: bool = False) -> None:
        h.agent.publish(
            "obs",
            ObsSample(connection="connected", streaming=streaming, reconnecting=reconnecting, output_bitrate_bps=6e6),
        )
        h.tick(ffmpeg=False)

    obs(False)
    obs(True)
    obs(True, reconnecting=True)
    obs(True)
    obs(False)
    assert [line["origins"] for line in h.of_type("session_started")] == [["obs"]]
    summary = h.agent.sessions.live_summary()
    assert summary is not None and summary.encoder_reconnects == 1 and summary.ticks_written == 4


async def test_a_preflight_report_and_source_states_written_while_live_carry_the_session_id(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.agent.emit(JobFinished(at=utc_now(), job="preflight", job_id="before", ok=True))
    h.tick()
    h.agent.emit(JobFinished(at=utc_now(), job="preflight", job_id="during", ok=True, report={"verdict": "GO"}))
    session_id = h.agent.sessions.session_id
    jobs = {line["job_id"]: line["session_id"] for line in h.of_type("job_finished")}
    assert jobs == {"before": None, "during": session_id}
    assert h.of_type("source_state")[0]["session_id"] is None  # ffmpeg went ok just before it went live
    h.agent.emit(SourceStateRecord(at=utc_now(), status=SourceStatus(name="obs", state="error", error="refused")))
    assert h.of_type("source_state")[-1]["session_id"] == session_id


async def test_a_stream_through_the_relay_alone_is_summarised_with_the_relays_bit_rate(tmp_path: Path) -> None:
    """An encoder that reports nothing itself (a hardware encoder, Larix) publishing to the relay: the
    session's output bit rate is what the relay sends on to the ingest, not zero."""
    h = Harness(tmp_path)
    for _ in range(4):
        h.clock.now += 1.0
        h.agent.publish("system", system_sample())
        h.agent.publish("relay", RelaySample(listen="127.0.0.1:1935", publishing=True, egress_bps=2.5e6))
        h.agent.tick()
    h.clock.now += 1.0
    h.agent.publish("relay", RelaySample(listen="127.0.0.1:1935", publishing=False))
    await h.agent.stop("test")
    (summary,) = h.of_type("session_summary")
    assert summary["origins"] == ["relay"]
    assert summary["output_bitrate_mean_bps"] == 2_500_000 and summary["output_bitrate_min_bps"] == 2_500_000

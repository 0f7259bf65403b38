"""Sessions read back from the health log: the agent's own summaries, and rebuilt ones after a kill."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import psutil

from agent.logs.session_index import SessionIndex, session_lines
from agent.logs.writer import HealthLogWriter
from tests.agent.sessions.test_recorder import Harness


def _logged(tmp_path: Path, gap_s: float = 5, started_at: datetime | None = None) -> Harness:
    """A harness whose agent also writes its health log, as `Agent.start` sets it up."""
    h = Harness(tmp_path, gap_s=gap_s)
    logs = h.agent.settings.logs
    writer = HealthLogWriter(logs.dir, started_at=started_at or h.agent.started_at, pid=os.getpid(),
                             max_bytes=logs.max_bytes, keep_bytes=0)  # fmt: skip
    writer.open()
    h.agent.outputs.log_writer = writer
    h.agent.sinks.append(writer)
    return h


def _dead_pid() -> int:
    pid = 4_000_000
    while psutil.pid_exists(pid):
        pid += 1
    return pid


async def test_an_ended_session_is_listed_with_the_summary_the_agent_wrote(tmp_path: Path) -> None:
    h = _logged(tmp_path)
    for _ in range(6):
        h.tick(cpu=0.95)
    for _ in range(12):  # ffmpeg's sample goes stale after 3 s, then 5 s of gap end the session
        h.tick(ffmpeg=False)
    for _ in range(3):
        h.tick()  # a second session
    await h.agent.stop("received SIGINT")
    index = SessionIndex(h.agent.settings.logs.dir)
    sessions = index.sessions()
    assert [s.end_reason for s in sessions] == ["agent_stopped", "stream_stopped"]  # newest first
    written = [line for line in h.lines if line["type"] == "session_summary"]
    assert sessions[1].model_dump(mode="json") == written[0]
    assert not sessions[1].reconstructed and sessions[1].run_id == h.agent.log_writer.stem  # type: ignore[union-attr]
    detail = index.session(sessions[1].session_id)
    assert detail is not None
    assert [(e.change, e.kind) for e in detail.alerts_timeline] == [("raised", "cpu_high"), ("cleared", "cpu_high")]


async def test_a_unique_prefix_finds_a_session_and_an_unknown_or_ambiguous_one_does_not(tmp_path: Path) -> None:
    h = _logged(tmp_path)
    h.tick()
    await h.agent.stop()
    index = SessionIndex(h.agent.settings.logs.dir)
    session_id = index.sessions()[0].session_id
    found = index.session(session_id[:17])  # the start time and one character of the random part
    assert found is not None and found.session_id == session_id
    assert index.session("nope") is None
    assert index.session("") is not None  # the only session: unambiguous
    assert index.matching_ids(session_id[:10]) == [session_id]


async def test_a_killed_agents_session_is_rebuilt_from_its_ticks_with_the_same_figures(tmp_path: Path) -> None:
    h = _logged(tmp_path)
    for second in range(20):
        h.tick(drops=second // 4, cpu=0.95 if 5 <= second < 8 else 0.3)
    live = h.agent.sessions.live_summary()
    assert live is not None and h.agent.sessions.current is not None
    last_live_at = h.agent.sessions.current.last_live_at
    # kill -9: no session_ended, no summary, no run_stopped; a torn last line; the pid is gone.
    writer = h.agent.log_writer
    assert writer is not None
    with writer.path.open("a") as handle:
        handle.write('{"type":"tick","schema_version":1,"session_id":"' + live.session_id + '","snaps')
    writer.close()
    writer.path.rename(writer.path.with_name(writer.path.name.replace(f"-{os.getpid()}", f"-{_dead_pid()}")))

    rebuilt = SessionIndex(h.agent.settings.logs.dir).sessions()[0]
    assert rebuilt.reconstructed and rebuilt.status == "ended"
    assert rebuilt.end_reason == "agent_stopped_unexpectedly" and "killed" in rebuilt.end_detail
    assert rebuilt.ended_at == last_live_at
    same = ("ticks_written", "output_bitrate_mean_bps", "frames_dropped", "alerts", "cpu_max_ratio", "health_score",
            "worst_minute", "started_at")  # fmt: skip
    assert {k: getattr(rebuilt, k) for k in same} == {k: getattr(live, k) for k in same}
    assert rebuilt.ticks_written == 20
    assert rebuilt.ticks_expected >= 1  # from the wall-clock span of its ticks (fast here: all in ~0 s)


async def test_a_session_of_a_running_agent_is_live_not_killed(tmp_path: Path) -> None:
    h = _logged(tmp_path)
    for _ in range(3):
        h.tick()
    index = SessionIndex(h.agent.settings.logs.dir)
    assert index.sessions()[0].status == "live"  # our own pid, written just now
    live = h.agent.sessions.live_summary()
    assert index.sessions(h.agent.log_writer.stem, live=live) == [live]  # type: ignore[union-attr]


async def test_session_lines_are_exactly_the_tagged_records(tmp_path: Path) -> None:
    h = _logged(tmp_path)
    h.tick(ffmpeg=False)
    for _ in range(4):
        h.tick()
    await h.agent.stop()
    session_id = SessionIndex(h.agent.settings.logs.dir).sessions()[0].session_id
    lines = [json.loads(line) for line in session_lines([h.agent.log_writer.path], session_id)]  # type: ignore[union-attr]
    kinds = [line["type"] for line in lines]
    assert kinds == ["session_started", "tick", "tick", "tick", "tick", "session_ended", "session_summary"]
    assert all(line["session_id"] == session_id for line in lines)

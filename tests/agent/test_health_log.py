"""Health logs: JSON Lines flushed line by line, rotated by size, redacted, readable after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.logs.reader import ReadProblem, read_records, run_files
from agent.logs.writer import HealthLogWriter
from agent.models import RunStarted, RunStopped, SourceStateRecord, TickRecord, utc_now
from tests.peers.wait import wait_until


def writer_in(directory: Path, max_bytes: int = 1_000_000, keep_bytes: int = 0) -> HealthLogWriter:
    writer = HealthLogWriter(directory, started_at=utc_now(), pid=1234, max_bytes=max_bytes, keep_bytes=keep_bytes)
    writer.open()
    return writer


def stopped_line(reason: str) -> str:
    return RunStopped(at=utc_now(), reason=reason).model_dump_json()


def test_each_line_is_on_disk_as_soon_as_it_is_written(tmp_path: Path) -> None:
    writer = writer_in(tmp_path)
    writer.write_line(stopped_line("one"))
    assert writer.path.read_text().count("\n") == 1  # no close, no buffering
    writer.close()


async def test_records_are_redacted_before_they_reach_the_log(tmp_path: Path) -> None:
    from agent.runtime import Agent
    from tests.agent.helpers import make_settings

    agent = Agent(make_settings(tmp_path), [])
    await agent.start()
    agent.report_failure("system", "publish to rtmp://live.twitch.tv/app/live_5_SecretKeyValue1 failed")
    await agent.stop()
    assert agent.log_writer is not None
    text = agent.log_writer.path.read_text()
    assert "SecretKeyValue1" not in text and "rtmp://live.twitch.tv/app/<redacted>" in text


def test_rotation_continues_the_run_in_numbered_parts(tmp_path: Path) -> None:
    writer = writer_in(tmp_path, max_bytes=64 * 1024)
    line = stopped_line("x" * 1000)
    for _ in range(200):  # ~200 KB
        writer.write_line(line)
    writer.close()
    files = run_files(tmp_path)
    assert len(files) >= 3
    assert files[0].name.endswith("-1234.jsonl") and files[1].name.endswith("-1234.part2.jsonl")
    assert all(path.stat().st_size <= 64 * 1024 for path in files)
    assert sum(1 for path in files for _ in read_records(path)) == 200


def test_retention_deletes_the_oldest_files_but_never_the_current_one(tmp_path: Path) -> None:
    old = tmp_path / "streamhealth-20200101T000000Z-1.jsonl"
    old.write_text(stopped_line("old") + "\n" + "x" * 200_000 + "\n")
    os.utime(old, (1, 1))
    writer = writer_in(tmp_path, max_bytes=64 * 1024, keep_bytes=100_000)
    assert not old.exists()
    assert writer.path.exists()
    writer.close()


def test_reader_skips_a_torn_last_line_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "streamhealth-20260101T000000Z-9.jsonl"
    path.write_text(stopped_line("complete") + "\n" + stopped_line("torn")[:25])
    problems: list[ReadProblem] = []
    records = list(read_records(path, problems))
    assert [r.reason for r in records if isinstance(r, RunStopped)] == ["complete"]
    assert len(problems) == 1 and "torn" in problems[0].reason


def test_reader_ignores_fields_and_record_types_from_newer_agents(tmp_path: Path) -> None:
    path = tmp_path / "streamhealth-20260101T000000Z-9.jsonl"
    newer = json.loads(stopped_line("ok"))
    newer["added_in_v2"] = True
    path.write_text(json.dumps(newer) + "\n" + json.dumps({"type": "from_the_future", "schema_version": 9}) + "\n")
    problems: list[ReadProblem] = []
    records = list(read_records(path, problems))
    assert len(records) == 1 and isinstance(records[0], RunStopped)
    assert len(problems) == 1


@pytest.mark.integration
def test_kill_9_loses_at_most_the_line_being_written(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    env = {
        **os.environ,
        "STREAMHEALTH_LOGS__DIR": str(logs),
        "STREAMHEALTH_API__PORT": "0",
        "STREAMHEALTH_SAMPLING__INTERVAL_S": "0.1",
        "STREAMHEALTH_SAMPLING__HISTORY_S": "600",  # within the history point budget at 10 Hz
        "STREAMHEALTH_INGEST__PRIMARY": "rtmp://127.0.0.1/live/CrashTestSecret42",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "agent", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        def ticks_written() -> int:
            files = run_files(logs) if logs.exists() else []
            return sum(1 for path in files for line in path.read_text().splitlines() if '"type":"tick"' in line)

        wait_until(lambda: ticks_written() >= 15, 30, "the agent to write 15 ticks")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        killed_at = time.time()
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.communicate(timeout=10)
    files = run_files(logs)
    assert len(files) == 1
    problems: list[ReadProblem] = []
    records = list(read_records(files[0], problems))
    assert isinstance(records[0], RunStarted)
    ticks = [record for record in records if isinstance(record, TickRecord)]
    assert len(ticks) >= 15
    assert ticks[-1].snapshot.taken_at.timestamp() > killed_at - 2  # nothing older than the last moments lost
    assert len(problems) <= 1 and all(p.line_number == len(records) + 1 for p in problems)
    assert any(isinstance(record, SourceStateRecord) for record in records)
    assert "CrashTestSecret42" not in files[0].read_text()


@pytest.mark.integration
def test_sigterm_stops_the_agent_cleanly_with_a_last_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    env = {**os.environ, "STREAMHEALTH_LOGS__DIR": str(logs), "STREAMHEALTH_API__PORT": "0"}
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "agent"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: logs.exists() and run_files(logs), 30, "the log file")
        wait_until(lambda: '"type":"tick"' in run_files(logs)[0].read_text(), 30, "a tick")
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=20)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate(timeout=10)
    assert agent.returncode == 0, stderr
    assert "Traceback" not in stderr
    last = list(read_records(run_files(logs)[0]))[-1]
    assert isinstance(last, RunStopped) and last.reason == "received SIGTERM"

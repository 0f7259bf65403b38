"""No relay task may die (issue 25), on asyncio's loop and on uvloop, with real peers: ffmpeg publishing
through the relay to recording nginx-rtmp ingests.

- A bug inside a session (an exception nobody expected, from the connection watch) is that session's loss:
  the relay reconnects, the task goes on, nothing is restarted.
- A bug that kills the destination's task from inside (its loss handler raising, the shape of issue 25's
  traceback) is logged, alerted ("the relay stopped forwarding to ...") and the task is started again with
  the stream's queue and GOP: the backup still gets the stream in time, decodable, and ffmpeg never notices.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.relay.destination import Destination
from tests.agent.relay.failover_peers import (
    decode_errors,
    ffmpeg_publishing,
    first_picture_seen,
    relay_with_backups,
    wait_for_first_picture,
)
from tests.agent.relay.helpers import until
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed here"))]  # fmt: skip
STREAM_S = 8
STALL_S, FAILOVER_AFTER_S = 1.5, 1.0


@pytest.fixture(params=LOOPS)
def runner(request: pytest.FixtureRequest) -> Iterator[asyncio.Runner]:
    factory = None
    if request.param == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as loop_runner:
        yield loop_runner


def _recording(path: Path) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    path.mkdir()
    with nginx_rtmp(record_dir=path) as server:
        yield server


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[NginxRtmp]:
    yield from _recording(tmp_path / "primary")


@pytest.fixture
def backup(tmp_path: Path) -> Iterator[NginxRtmp]:
    yield from _recording(tmp_path / "backup")


def test_a_bug_inside_a_session_is_that_sessions_loss_and_the_task_goes_on(
    runner: asyncio.Runner, primary: NginxRtmp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.relay.destination as destination_module

    real_watch = destination_module.watch_connection
    calls = 0

    async def watch_with_a_bug(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)
            raise ValueError("negative file descriptor")  # what uvloop's closed socket raised in issue 25
        await real_watch(*args, **kwargs)

    monkeypatch.setattr(destination_module, "watch_connection", watch_with_a_bug)

    async def scenario() -> None:
        recorded = tmp_path / "primary" / "main.flv"
        async with (
            relay_with_backups([primary.url("main")], stall_s=STALL_S) as relay,
            ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", STREAM_S) as ffmpeg,
        ):
            destination = relay.destinations[0]
            await until(lambda: destination.reconnects_total == 1, 10, "the reconnect after the session's bug")
            assert "negative file descriptor" in (destination.last_switch.reason if destination.last_switch else "")
            assert await ffmpeg.process.wait() == 0
            await until(lambda: destination.state == "idle", 15, "the relay to finish the stream")
            assert relay.supervisor.endings_total == 0  # nothing had to be restarted
            assert relay.supervisor.active_alerts() == []
            assert all(not task.done() for task in relay.supervisor.tasks)
        assert ffmpeg.stderr == b"", ffmpeg.stderr.decode(errors="replace")
        # nginx records each publish afresh: this is the reconnected session's, decodable from its first frame.
        assert first_picture_seen(recorded) and decode_errors(recorded) == ""

    runner.run(scenario())


def test_a_destination_task_killed_from_inside_is_alerted_and_restarted_with_its_queue(
    runner: asyncio.Runner, primary: NginxRtmp, backup: NginxRtmp, tmp_path: Path
) -> None:
    async def scenario() -> None:
        urls = [primary.url("main"), backup.url("main")]
        backup_recording = tmp_path / "backup" / "main.flv"
        async with (
            relay_with_backups(urls, stall_s=STALL_S, failover_after_s=FAILOVER_AFTER_S) as relay,
            ffmpeg_publishing(f"rtmp://127.0.0.1:{relay.port}/live/k", STREAM_S) as ffmpeg,
        ):
            destination = relay.destinations[0]
            await until(lambda: first_picture_seen(tmp_path / "primary" / "main.flv"), 15, "the primary's recording")
            await until(lambda: destination.frames_out_total > 60, 10, "two seconds at the primary")
            # The injected bug: the loss handler raises once, so the exception ends Destination.run.
            real_failed = destination._failed

            def failed_with_a_bug(exc: BaseException, state: Any) -> None:
                destination._failed = real_failed  # type: ignore[method-assign]
                raise ValueError(f"injected: handling {type(exc).__name__}")

            destination._failed = failed_with_a_bug  # type: ignore[method-assign]
            pid = ffmpeg.process.pid
            killed_at = time.monotonic()
            primary.process.kill()
            await until(lambda: relay.supervisor.endings_total == 1, 5, "the task's end to be seen")
            [alert] = relay.supervisor.active_alerts()
            assert alert.severity == "critical"
            assert alert.message.startswith(f"The relay stopped forwarding to 127.0.0.1:{primary.port} at ")
            assert "ValueError: injected: handling" in alert.message
            await wait_for_first_picture(backup_recording, STALL_S + FAILOVER_AFTER_S + 1)
            took_s = time.monotonic() - killed_at
            ending = relay.supervisor.ending_of(f"relay-destination:{destination.name}")
            assert ending is not None and ending.restarts == 1  # started again, once
            assert await ffmpeg.process.wait() == 0
            await until(lambda: destination.state == "idle", 15, "the relay to finish the stream")
        assert took_s <= STALL_S + FAILOVER_AFTER_S + 1, took_s
        assert ffmpeg.process.pid == pid and ffmpeg.stderr == b"", ffmpeg.stderr.decode(errors="replace")
        assert ffmpeg.longest_progress_gap_s < 3.0
        switch = destination.last_switch
        assert switch is not None and switch.kind == "failover"
        # The queue and the GOP in flight were kept across the restart: at most what was sent unacknowledged
        # before the GOP's keyframe is lost (under a GOP, 1 s here), as after any failover.
        assert switch.lost_media_ms < 1000, switch
        assert decode_errors(backup_recording) == ""

    runner.run(scenario())


def test_the_restart_repair_keeps_the_gop_for_the_next_connection() -> None:
    """task_ended puts the GOP being sent back at the front of the queue, as a lost connection does."""
    from agent.relay.frames import Frame, FrameKind, HeaderCache

    destination = Destination(["rtmp://127.0.0.1:1/live/k", "rtmp://127.0.0.1:2/live/k"], HeaderCache())
    destination.start_stream()
    frames = [
        Frame(type_id=9, timestamp_ms=i * 33, payload=b"\x17\x01" if i == 0 else b"\x27\x01",
              kind=FrameKind.VIDEO_KEY if i == 0 else FrameKind.VIDEO_INTER, codec="avc")
        for i in range(5)
    ]  # fmt: skip
    for frame in frames:
        destination._remember_for_replay(frame)
    destination.task_ended("ValueError: injected")
    assert [destination.queue.pop().timestamp_ms for _ in range(5)] == [f.timestamp_ms for f in frames]  # type: ignore[union-attr]
    assert destination.queue.holding and destination.last_error is not None
    assert "task for this ingest ended" in destination.last_error

"""As a user: an agent runs, `streamhealth run -- ffmpeg` publishes to a real nginx-rtmp, the stream
stops (or the agent is killed), and `streamhealth logs` tells the story.

Real processes throughout: the agent and the wrapper as `python -m agent.cli`, ffmpeg, nginx-rtmp.
Lean: 4-6 s streams at 320x240 (CI has two shared cores); figures are checked with wide margins.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.wait import free_port, port_open, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
]

REPO = Path(__file__).resolve().parents[3]
BITRATE_KBIT = 500


def _env(tmp_path: Path, port: int, ingest: str) -> dict[str, str]:
    return {
        **os.environ,
        "STREAMHEALTH_API__PORT": str(port),
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
        "STREAMHEALTH_INGEST__PRIMARY": ingest,
        "STREAMHEALTH_STREAM__VIDEO_BITRATE_KBPS": str(BITRATE_KBIT),
        "STREAMHEALTH_SESSIONS__GAP_S": "2",
    }


def _ffmpeg(url: str, seconds: float) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-b:v", f"{BITRATE_KBIT}k", "-maxrate", f"{BITRATE_KBIT}k", "-bufsize", f"{BITRATE_KBIT}k", "-g", "30",
        "-f", "flv", url,
    ]  # fmt: skip


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def _streamhealth(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def _records(log_dir: Path) -> list[dict[str, object]]:
    records = []
    for path in sorted(log_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def test_a_stream_that_stops_gets_a_summary_that_logs_list_summary_and_export_show(
    nginx_ingest: NginxRtmp, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(tmp_path, port, nginx_ingest.url("secret-stream-key"))
    log_dir = tmp_path / "logs"
    with _process([sys.executable, "-m", "agent.cli", "agent"], env, tmp_path / "agent.txt") as agent:
        wait_until(lambda: port_open("127.0.0.1", port), 20, "the agent's API")
        wrapped = _streamhealth(env, "run", "--", *_ffmpeg(nginx_ingest.url("secret-stream-key"), 5))
        assert wrapped.returncode == 0, wrapped.stderr
        assert "progress goes to the agent" in wrapped.stderr
        wait_until(lambda: any(r["type"] == "session_summary" for r in _records(log_dir)), 30, "the session's summary")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0

    listed = _streamhealth(env, "logs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)["sessions"]
    assert len(sessions) == 1
    summary = sessions[0]
    assert summary["end_reason"] == "stream_stopped" and summary["origins"] == ["ffmpeg"]
    assert not summary["reconstructed"]
    assert summary["ticks_written"] == summary["ticks_expected"] >= 4
    assert 3 <= summary["live_s"] <= 8  # a 5 s stream, seen from the first to the last progress report
    assert summary["target_bitrate_bps"] == BITRATE_KBIT * 1000
    # ffmpeg's own bitrate estimate of a 500 kb/s stream: a wide margin for a loaded machine.
    assert 0.3 * BITRATE_KBIT * 1000 <= summary["output_bitrate_mean_bps"] <= 3 * BITRATE_KBIT * 1000
    drops = {drop["cause"]: drop for drop in summary["frames_dropped"]}
    assert drops["encoder"]["of_frames"] == 150  # 5 s at 30 fps, all of them reported
    assert summary["rtt_p50_ms"] is not None  # probes to the (loopback) ingest
    assert summary["cpu_max_ratio"] is not None
    assert summary["health_score"] is not None and 0 <= summary["health_score"] <= 100
    assert "secret-stream-key" not in listed.stdout

    session_id = summary["session_id"]
    shown = _streamhealth(env, "logs", "summary", session_id[:18])
    assert shown.returncode == 0 and session_id in shown.stdout and "stream stopped" in shown.stdout
    exported = _streamhealth(env, "logs", "export", session_id, "--format", "csv")
    assert exported.returncode == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == summary["ticks_written"]  # every tick the agent counted is in the log
    unknown = _streamhealth(env, "logs", "show", "19990101T000000Z")
    assert unknown.returncode == 2 and "streamhealth logs list" in unknown.stderr and not unknown.stdout


def test_a_killed_agents_session_is_rebuilt_and_says_the_agent_stopped_unexpectedly(
    nginx_ingest: NginxRtmp, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(tmp_path, port, nginx_ingest.url("key"))
    log_dir = tmp_path / "logs"

    def tagged_ticks() -> list[dict[str, object]]:
        return [r for r in _records(log_dir) if r["type"] == "tick" and r.get("session_id")]

    with (
        _process([sys.executable, "-m", "agent.cli", "agent"], env, tmp_path / "agent.txt") as agent,
        contextlib.ExitStack() as stack,
    ):
        wait_until(lambda: port_open("127.0.0.1", port), 20, "the agent's API")
        run = [sys.executable, "-m", "agent.cli", "run", "--", *_ffmpeg(nginx_ingest.url("key"), 20)]
        stack.enter_context(_process(run, env, tmp_path / "wrapper.txt"))
        wait_until(lambda: len(tagged_ticks()) >= 3, 30, "three ticks of a live session")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)

    listed = _streamhealth(env, "logs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [summary] = json.loads(listed.stdout)["sessions"]
    assert summary["reconstructed"] and summary["status"] == "ended"
    assert summary["end_reason"] == "agent_stopped_unexpectedly"
    assert summary["ticks_written"] == len(tagged_ticks())
    assert summary["ticks_written"] == summary["ticks_expected"]  # no hole between the first and last tick
    table = _streamhealth(env, "logs", "list")
    assert "agent killed" in table.stdout

"""`streamhealth logs`: list, show, summary and export of sessions, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest

from agent.cli import main
from tests.agent.sessions.test_session_index import _logged


@pytest.fixture
async def log_dir(tmp_path: Path) -> Path:
    """A log folder with one ended session (6 ticks, one CPU alert) written by a real agent."""
    h = _logged(tmp_path)
    h.tick(ffmpeg=False)
    for second in range(6):
        h.tick(cpu=0.95 if second == 2 else 0.3, drops=second)
    await h.agent.stop("received SIGINT")
    return h.agent.settings.logs.dir


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    handlers = logging.getLogger().handlers[:]
    try:
        code = main(["logs", *argv])
    finally:
        logging.getLogger().handlers[:] = handlers  # main() logs to the stderr capsys is about to close
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_a_table_and_json_for_scripts(log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--dir", str(log_dir), "list", "--json")
    assert code == 0
    sessions = json.loads(out)["sessions"]
    assert len(sessions) == 1 and sessions[0]["end_reason"] == "agent_stopped"
    session_id = sessions[0]["session_id"]
    code, out, _ = _run(capsys, "--dir", str(log_dir), "list")
    assert code == 0
    assert session_id in out and "agent stopped" in out and "6/6" in out


def test_summary_and_show_print_the_figures_and_the_timeline(log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "--dir", str(log_dir), "list", "--json")
    session_id = json.loads(out)["sessions"][0]["session_id"]
    code, out, _ = _run(capsys, "--dir", str(log_dir), "summary", session_id[:17], "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["session_id"] == session_id and "alerts_timeline" not in summary
    assert summary["frames_dropped"][0]["frames"] == 5 and summary["cpu_max_ratio"] == 0.95
    code, out, _ = _run(capsys, "--dir", str(log_dir), "show", session_id)
    assert code == 0
    assert "6 written / 6 expected" in out and "Alert timeline" in out and "raised" in out and "cleared" in out
    assert "encoder 5 of 180" in out


def test_export_jsonl_is_the_sessions_lines_and_csv_has_a_row_per_tick(
    log_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, out, _ = _run(capsys, "--dir", str(log_dir), "list", "--json")
    session_id = json.loads(out)["sessions"][0]["session_id"]
    code, out, _ = _run(capsys, "--dir", str(log_dir), "export", session_id, "--format", "jsonl")
    assert code == 0
    lines = out.splitlines()
    log_lines = (next(log_dir.glob("*.jsonl"))).read_text().splitlines()
    assert lines == [line for line in log_lines if f'"session_id":"{session_id}"' in line]  # byte-identical
    assert [json.loads(line)["type"] for line in lines].count("tick") == 6
    target = tmp_path / "session.csv"
    code, _, err = _run(capsys, "--dir", str(log_dir), "export", session_id, "--format", "csv", "-o", str(target))
    assert code == 0 and "wrote 6 rows" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 6
    assert [row["ffmpeg_drop_frames_total"] for row in rows] == ["0", "1", "2", "3", "4", "5"]
    assert rows[2]["active_alerts"] == "cpu" and rows[0]["live"] == "ffmpeg"


def test_an_unknown_id_exits_2_and_says_what_to_do(log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("show", "summary", "export"):
        code, out, err = _run(capsys, "--dir", str(log_dir), action, "20991231T000000Z-000000")
        assert code == 2 and out == ""
        assert "no session '20991231T000000Z-000000'" in err and "streamhealth logs list" in err
        assert "Traceback" not in err


def test_an_empty_folder_lists_nothing_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--dir", str(tmp_path / "none"), "list")
    assert code == 0 and "No stream sessions" in out

"""`streamhealth preflight` from the outside: JSON only on stdout, exit code from the verdict, 3 when
the check itself could not run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import cli
from agent.commands import preflight_terminal
from agent.errors import SourceUnavailable

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'platform = "twitch"\n[logs]\ndir = "{tmp_path / "logs"}"\n'
        "[stream]\nvideo_bitrate_kbps = 9000\naudio_bitrate_kbps = 160\nwidth = 1280\nheight = 720\nfps = 30\n"
        "keyframe_interval_s = 2\n" + extra
    )
    return config


def test_json_report_alone_on_stdout_and_exit_code_follows_the_verdict(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")}
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(write_config(tmp_path)), "preflight", "--json",
         "--no-bandwidth", "--duration", "1"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    report = json.loads(result.stdout)
    # 9000 kbps is above Twitch's 6000 kbps maximum: NO_GO whatever this machine is like.
    assert report["verdict"] == "NO_GO"
    assert result.returncode == preflight_terminal.EXIT_BY_VERDICT["NO_GO"] == 2
    (bitrate,) = [c for c in report["checks"] if c["name"] == "video bitrate"]
    assert bitrate["status"] == "fail" and bitrate["suggestion"] == "set 6000 kbps or less"
    logged = [
        json.loads(line) for path in (tmp_path / "logs").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert [r["report"]["verdict"] for r in logged if r["type"] == "job_finished"] == ["NO_GO"]


def test_exit_code_3_when_the_preflight_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def cannot_run(*args: object, **kwargs: object) -> None:
        raise SourceUnavailable("the system source cannot read /proc")

    monkeypatch.setattr(preflight_terminal, "run_preflight", cannot_run)
    code = cli.main(["--config", str(write_config(tmp_path)), "preflight", "--json", "--duration", "1"])
    assert code == 3
    captured = capsys.readouterr()
    assert captured.out == "" and "could not run: the system source cannot read /proc" in captured.err

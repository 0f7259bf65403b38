"""`streamhealth rules test`: a health log replayed through the rules prints each alert's lifecycle, and an
expectations file passes or fails like `promtool test rules`; a bad expectations file is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.models import AgentInfo, HealthSnapshot, TickRecord
from tests.agent.helpers import system_sample
from tests.agent.rules.feed import T0, at


def write_log(path: Path, cpu_by_second: list[float]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for t, cpu in enumerate(cpu_by_second):
            snapshot = HealthSnapshot(
                taken_at=at(t),
                agent=AgentInfo(version="t", pid=1, started_at=T0, uptime_s=t, platform="custom"),
                overall="ok",
                sources={},
                system=system_sample(cpu, taken_at=at(t)),
            )
            handle.write(TickRecord(snapshot=snapshot).model_dump_json() + "\n")
        handle.write('{"type": "tick", "torn')  # a torn last line is skipped, not fatal


def test_replays_a_health_log_and_checks_expectations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run.jsonl"
    write_log(log, [0.2] * 5 + [0.99] * 20 + [0.2] * 20)  # cpu_high: for_s 10, clear_for_s 8
    expect = tmp_path / "expect.toml"
    expect.write_text(
        "[[expect]]\nalert = 'cpu_high'\nraised_between_s = [15, 16]\nseverity = 'critical'\ncleared_by_s = 33\n"
        "[[expect]]\nquiet_between_s = [0, 14.5]\n"
    )
    assert main(["rules", "test", str(log), "--expect", str(expect)]) == 0
    out = capsys.readouterr()
    assert "15.0 s  raised    critical  cpu_high: The CPU is 99% busy" in out.out
    assert "33.0 s  cleared" in out.out and "PASSED: 2 expectation(s)" in out.out
    assert "torn last line" in out.err

    expect.write_text("[[expect]]\nalert = 'cpu_high'\ncleared_by_s = 30\n")
    assert main(["rules", "test", str(log), "--expect", str(expect)]) == 1
    assert "FAILED: cpu_high raised at 15.0 s cleared at 33.0 s, expected by 30 s" in capsys.readouterr().out


def test_a_bad_expectations_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run.jsonl"
    write_log(log, [0.2] * 3)
    expect = tmp_path / "expect.toml"
    expect.write_text("[[expect]]\nalert = 'cpu_high'\nraised_within = 3\n")
    assert main(["rules", "test", str(log), "--expect", str(expect)]) == 2
    assert "raised_within: unknown key" in capsys.readouterr().err
    assert main(["rules", "test", str(tmp_path / "missing.jsonl")]) == 2

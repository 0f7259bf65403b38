"""Bad settings and a busy port: one clear message and exit 2, never a traceback, nothing left behind.
Each case runs the real `streamhealth agent` process; memory-hungry inputs are refused at load."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.settings import MAX_CONFIG_BYTES, load_settings

pytestmark = pytest.mark.integration


def run_agent(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")},
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_API__PORT": "0",
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args, "agent"], env=env, capture_output=True, text=True, timeout=60
    )


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_config_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes("[api]\n# caf\u00e9 in Latin-1\nport = 8765\n".encode("latin-1"))
    assert_refused(run_agent(tmp_path, "--config", str(config)), str(config), "not UTF-8")


def test_a_huge_config_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[sources.network]\nextra_targets = [" + '"a",' * (MAX_CONFIG_BYTES // 4 + 10) + "]\n")
    assert_refused(run_agent(tmp_path, "--config", str(config)), str(config), "larger than")


def test_long_lists_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[sources.network]\nextra_targets = [" + '"host.example",' * 1000 + "]\n")
    assert_refused(run_agent(tmp_path, "--config", str(config)), "sources.network.extra_targets", "at most 32")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"STREAMHEALTH_SAMPLING__INTERVAL_S": "0.001"}, ["STREAMHEALTH_SAMPLING__INTERVAL_S", "0.1"]),
        ({"STREAMHEALTH_SAMPLING__INTERVAL_S": "1e-6"}, ["STREAMHEALTH_SAMPLING__INTERVAL_S"]),
        (
            {"STREAMHEALTH_SAMPLING__INTERVAL_S": "0.1", "STREAMHEALTH_SAMPLING__HISTORY_S": "604800"},
            ["sampling", "points of history", "at most 172,800"],
        ),
        ({"STREAMHEALTH_INGEST__BACKUPS": "notjson"}, ["STREAMHEALTH_INGEST__BACKUPS", "not valid JSON", "JSON list"]),
    ],
)
def test_settings_that_would_cost_unbounded_memory_or_cannot_parse_name_the_variable(
    tmp_path: Path, environ: dict[str, str], expected: list[str]
) -> None:
    assert_refused(run_agent(tmp_path, **environ), *expected)


def test_a_secret_quoted_in_another_settings_error_is_redacted(tmp_path: Path) -> None:
    token = "tok_PastedInTheWrongPlace123"
    result = run_agent(tmp_path, STREAMHEALTH_API__TOKEN=token, STREAMHEALTH_API__PORT=token)
    assert_refused(result, "STREAMHEALTH_API__PORT")
    assert token not in result.stderr and "<redacted>" in result.stderr


def test_a_misspelt_variable_warns_with_the_closest_setting(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.settings"):
        load_settings(None, {"STREAMHEALTH_SAMPLNG__INTERVAL_S": "2", "STREAMHEALTH_CONFIG": ""})
    assert [record.getMessage() for record in caplog.records] == [
        "environment variable STREAMHEALTH_SAMPLNG__INTERVAL_S is not a setting and is ignored; "
        "did you mean STREAMHEALTH_SAMPLING__INTERVAL_S?"
    ]


def test_a_second_agent_on_a_busy_port_exits_2_and_leaves_no_run_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_agent(tmp_path, STREAMHEALTH_API__PORT=str(port))
    assert_refused(result, f"127.0.0.1:{port}", "another agent")
    logs = tmp_path / "logs"
    assert not logs.exists() or list(logs.iterdir()) == []

"""STREAMHEALTH_* variables as the top settings layer (pydantic-settings' environment source), and the
error quality kept on top of it: the variable named, the field, the reason, a warning for a misspelt one."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.settings import load_settings


def test_nested_names_any_case_and_json_for_lists_and_tables(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('platform = "twitch"\n[api]\nhost = "127.0.0.1"\n')
    settings = load_settings(
        None,
        environ={
            "streamhealth_api__port": "9100",
            "STREAMHEALTH_LOGS__DIR": str(tmp_path),
            "STREAMHEALTH_INGEST__BACKUPS": '["rtmp://backup.example/app/key-two"]',
            "STREAMHEALTH_RULES__OVERRIDES": '{"cpu_high": {"warning": 0.9}}',
            "STREAMHEALTH_SOURCES__OBS__BACKUP_SCENE__ENABLED": "true",
            "STREAMHEALTH_CONFIG": str(tmp_path / "mine.toml"),  # names the file, not a setting
        },
    )
    assert settings.platform == "twitch" and settings.api.port == 9100 and settings.logs.dir == tmp_path
    assert settings.api.host == "127.0.0.1"  # the file's value beside the variable's, in one section
    assert settings.ingest.backups == ["rtmp://backup.example/app/key-two"]
    assert settings.rules.overrides == {"cpu_high": {"warning": 0.9}}
    assert settings.sources.obs.backup_scene.enabled is True


def test_an_unknown_name_inside_a_section_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"STREAMHEALTH_API__PROT": "9000"})
    assert "environment variable STREAMHEALTH_API__PROT" in str(caught.value)
    assert "unknown setting" in str(caught.value)


def test_a_list_setting_that_is_not_json_says_it_takes_a_json_list() -> None:
    with pytest.raises(ConfigError, match=r"STREAMHEALTH_INGEST__BACKUPS: not valid JSON .* must be a JSON list"):
        load_settings(None, environ={"STREAMHEALTH_INGEST__BACKUPS": "rtmp://a/b/c"})


def test_variables_outside_our_sections_are_left_alone_with_a_warning_for_a_misspelt_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.settings"):
        settings = load_settings(None, environ={"STREAMHEALTH_SAMPLNG__INTERVAL_S": "2", "OTHER_API__PORT": "1"})
    assert settings.api.port == 8765 and settings.sampling.interval_s == 1.0
    assert [record.getMessage() for record in caplog.records] == [
        "environment variable STREAMHEALTH_SAMPLNG__INTERVAL_S is not a setting and is ignored; "
        "did you mean STREAMHEALTH_SAMPLING__INTERVAL_S?"
    ]


def test_a_section_check_failed_by_a_variable_names_the_variable_not_the_shipped_file() -> None:
    """Issue 23: 0.1 s ticks with the default 6 h of history is too much history; the variable did it."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"STREAMHEALTH_SAMPLING__INTERVAL_S": "0.1"})
    message = str(caught.value)
    assert "environment variable STREAMHEALTH_SAMPLING__INTERVAL_S: sampling: " in message
    assert "default.toml" not in message and "history_s / interval_s" in message


def test_each_bad_variable_is_one_line_naming_it_and_the_cli_exits_2(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STREAMHEALTH_LOGS__DIR": str(tmp_path),
        "STREAMHEALTH_API__PORT": "not-a-port",
        "STREAMHEALTH_SOURCES__NETWORK__INTERVAL_S": "0.001",
    }
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "agent"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "streamhealth: invalid configuration:"
    assert any(line.startswith("  environment variable STREAMHEALTH_API__PORT: api.port: ") for line in lines), lines
    assert any(
        line.startswith(
            "  environment variable STREAMHEALTH_SOURCES__NETWORK__INTERVAL_S: sources.network.interval_s: "
        )
        and "greater than or equal to 0.25" in line
        for line in lines
    ), lines
    assert len(lines) == 3

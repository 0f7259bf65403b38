"""The collector reads its own settings section only: a broken agent config never stops it, and its own
mistakes are named like the agent's (file or variable, field, reason; exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError
from collector.settings import load_collector_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_layers_file_then_variables_then_the_command_line(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[collector]\nport = 9001\nhost = "0.0.0.0"\nretention_days = 7\n')
    environ = {"STREAMHEALTH_COLLECTOR__PORT": "9002", "STREAMHEALTH_COLLECTOR__ROLLUP_DAYS": "90"}
    settings = load_collector_settings(config, {"port": 9003, "database": None}, environ)
    assert (settings.host, settings.port, settings.retention_days, settings.rollup_days) == ("0.0.0.0", 9003, 7, 90)
    assert settings.body_deadline_s == 20.0 and settings.database is None


def test_the_older_database_variable_still_works_and_the_new_one_wins(tmp_path: Path) -> None:
    older = {"STREAMHEALTH_COLLECTOR_DATABASE": "sqlite:////srv/a.sqlite3"}
    assert load_collector_settings(None, {}, older).database == "sqlite:////srv/a.sqlite3"
    both = {**older, "STREAMHEALTH_COLLECTOR__DATABASE": "sqlite:////srv/b.sqlite3"}
    assert load_collector_settings(None, {}, both).database == "sqlite:////srv/b.sqlite3"


def test_a_bad_value_names_the_file_or_the_variable_and_the_field(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[collector]\nport = 70000\nretention = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_collector_settings(config, {}, {"STREAMHEALTH_COLLECTOR__BODY_DEADLINE_S": "0"})
    lines = str(caught.value).splitlines()
    assert f"  {config}: collector.port: Input should be less than or equal to 65535 (got 70000)" in lines
    assert any(line.startswith(f"  {config}: collector.retention: unknown setting") for line in lines)
    assert any(
        line.startswith("  environment variable STREAMHEALTH_COLLECTOR__BODY_DEADLINE_S: collector.body_deadline_s")
        for line in lines
    )


def test_serve_ignores_a_broken_agent_config_and_exits_2_on_a_broken_collector_section(tmp_path: Path) -> None:
    """Earlier, the collector loaded and validated the agent's whole configuration and rules."""
    broken_agent = "[sampling]\ninterval_s = -1\n[rules]\ndisabled = 3\n[collector]\nport = -5\n"
    config = write(tmp_path / "config.toml", broken_agent)
    env = {**os.environ, "STREAMHEALTH_CONFIG": str(config)}
    command = [sys.executable, "-m", "tui.cli", "collector", "serve", "--database", f"sqlite:///{tmp_path}/c.sqlite3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{config}: collector.port: Input should be greater than or equal to 0" in result.stderr
    assert "sampling" not in result.stderr and "rules" not in result.stderr  # not the collector's business


def test_token_runs_beside_a_broken_agent_config(tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", "[api]\nport = 'x'\n")
    database = f"sqlite:///{tmp_path}/c.sqlite3"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--config",
            str(config),
            "collector",
            "token",
            "studio",
            "--database",
            database,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sha_")

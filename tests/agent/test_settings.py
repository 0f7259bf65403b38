"""Settings: layered sources, and one clear message with exit code 2 for every kind of bad config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.settings import load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_come_from_the_shipped_default_toml() -> None:
    settings = load_settings(None, environ={})
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 8765
    assert settings.sampling.interval_s == 1.0
    assert settings.logs.dir.parts[-2:] == ("streamhealth", "logs")
    assert settings.platform == "custom"


def test_user_file_overrides_defaults_and_environment_overrides_both(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[api]\nport = 9100\n[sampling]\ninterval_s = 2.0\n")
    environ = {"STREAMHEALTH_API__PORT": "9000", "STREAMHEALTH_LOGS__DIR": str(tmp_path / "x")}
    settings = load_settings(config, environ=environ)
    assert settings.api.port == 9000
    assert settings.sampling.interval_s == 2.0
    assert settings.logs.dir == tmp_path / "x"
    assert settings.api.host == "127.0.0.1"  # untouched sections keep the shipped defaults


def test_config_path_from_environment_variable(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", 'platform = "twitch"\n')
    assert load_settings(None, environ={"STREAMHEALTH_CONFIG": str(config)}).platform == "twitch"


def test_platform_config_folder_is_used_when_present(tmp_path: Path) -> None:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "streamhealth"
    folder.mkdir(parents=True)
    write(folder / "config.toml", 'platform = "youtube"\n')
    assert load_settings(None, environ={}).platform == "youtube"


def test_paths_expand_the_home_folder(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[logs]\ndir = "~/somewhere"\n')
    assert load_settings(config, environ={}).logs.dir == Path.home() / "somewhere"


@pytest.mark.parametrize(
    ("toml", "field", "reason"),
    [
        ("[sampling]\ninterval_s = -1\n", "sampling.interval_s", "greater than or equal to 0.1"),
        ('[api]\nport = "eighty"\n', "api.port", "valid integer"),
        ("[api]\nprot = 1\n", "api.prot", "unknown setting"),
        ('[ingest]\nprimary = "http://example.com/app/k"\n', "ingest.primary", "rtmp:// or rtmps://"),
        ('platform = "myspace"\n', "platform", "tiktok"),
    ],
)
def test_bad_values_name_the_file_the_field_and_the_reason(tmp_path: Path, toml: str, field: str, reason: str) -> None:
    config = write(tmp_path / "bad.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    message = str(caught.value)
    assert f"{config}: {field}: " in message
    assert reason in message


def test_bad_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"STREAMHEALTH_SAMPLING__INTERVAL_S": "fast"})
    assert "environment variable STREAMHEALTH_SAMPLING__INTERVAL_S: sampling.interval_s" in str(caught.value)


def test_invalid_ingest_url_error_never_shows_the_key(tmp_path: Path) -> None:
    config = write(tmp_path / "bad.toml", '[ingest]\nprimary = "htp://live.twitch.tv/app/live_9_SECRETKEY123"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "SECRETKEY123" not in str(caught.value)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path / "broken.toml", "[api\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert str(config) in str(caught.value)
    assert "line 1" in str(caught.value)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[sampling]\ninterval_s = -1\n", "sampling.interval_s"),
        ('[api]\nport = "x"\n', "api.port"),
        ("[nonsense]\na = 1\n", "nonsense"),
        ('[ingest]\nbackups = ["udp://x/app/k"]\n', "ingest.backups"),
        ("[[[", None),
    ],
)
def test_cli_exits_2_with_one_clear_message_and_no_traceback(tmp_path: Path, toml: str, field: str | None) -> None:
    config = write(tmp_path / "bad.toml", toml)
    result = run_cli("agent", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("streamhealth: ")
    assert str(config) in result.stderr
    if field:
        assert field in result.stderr


def test_cli_refuses_a_non_loopback_bind_without_a_token(tmp_path: Path) -> None:
    result = run_cli("agent", env={"STREAMHEALTH_API__HOST": "0.0.0.0", "STREAMHEALTH_LOGS__DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "api.token" in result.stderr
    assert "Traceback" not in result.stderr

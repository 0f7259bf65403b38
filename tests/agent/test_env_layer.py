"""STREAMHEALTH_* variables as the top settings layer, read without pydantic-settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.settings import load_settings


def test_nested_names_any_case_and_json_for_lists_and_tables(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('platform = "twitch"\n')
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


def test_variables_outside_our_sections_are_left_alone() -> None:
    settings = load_settings(None, environ={"STREAMHEALTH_NOT_OURS": "1", "OTHER_API__PORT": "1"})
    assert settings.api.port == 8765

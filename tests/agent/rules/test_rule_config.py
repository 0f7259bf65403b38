"""Rules as data: shipped rules load, the user's overrides apply, and every mistake names the file,
the rule and the reason — through the real CLI too (exit code 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.configuration import load_configuration
from agent.errors import ConfigError
from agent.rules.config import load_rule_set
from agent.settings import load_settings


def settings_with(tmp_path: Path, text: str, rules_file: str | None = None):  # type: ignore[no-untyped-def]
    if rules_file is not None:
        (tmp_path / "rules.toml").write_text(rules_file)
    config = tmp_path / "config.toml"
    config.write_text(text)
    return config


def test_shipped_rules_cover_the_issue_list() -> None:
    names = {rule.name for rule in load_rule_set(load_settings(environ={})).rules}
    for expected in (
        "upload_headroom", "network_drops", "encoding_lag", "rendering_lag", "congestion", "stream_reconnecting",
        "stream_down", "cpu_high", "encoder_cpu_high", "memory_pressure", "ingest_rtt", "ingest_jitter",
        "ingest_loss", "ingest_unreachable", "obs_not_connected", "bitrate_below_preset", "fps_low",
        "keyframe_interval", "on_battery", "on_wifi", "low_disk", "congestion_rising", "output_bitrate_low",
        "rtt_climbing", "retransmits_climbing",
    ):  # fmt: skip
        assert expected in names


def test_overrides_change_single_keys_and_disabled_rules_are_gone(tmp_path: Path) -> None:
    config = settings_with(
        tmp_path, '[rules]\ndisabled = ["on_wifi"]\n[rules.overrides.cpu_high]\nwarning = 0.9\nfor_s = 20\n'
    )
    rules = {rule.name: rule for rule in load_rule_set(load_settings(config, environ={})).rules}
    assert "on_wifi" not in rules
    assert rules["cpu_high"].warning == 0.9 and rules["cpu_high"].for_s == 20
    assert rules["cpu_high"].critical == 0.95  # untouched keys stay


def test_user_rules_file_adds_and_replaces_rules(tmp_path: Path) -> None:
    config = settings_with(
        tmp_path,
        f'[rules]\nfile = "{tmp_path / "rules.toml"}"\n',
        rules_file=(
            '[rule.gpu_hot]\nmetric = "system.load_average_1m"\ncomparison = "above"\nwarning = 8\n'
            'message = "load {value}"\n[rule.on_battery]\nfor_s = 60\n'
        ),
    )
    rules = {rule.name: rule for rule in load_rule_set(load_settings(config, environ={})).rules}
    assert rules["gpu_hot"].warning == 8
    assert rules["on_battery"].for_s == 60 and rules["on_battery"].comparison == "is_true"


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ('metric = "obs.no_such_field"\ncomparison = "above"\nwarning = 1', "obs has no field 'no_such_field'"),
        ('metric = "derived.nope"\ncomparison = "above"\nwarning = 1', "unknown derived metric 'derived.nope'"),
        ('metric = "system.cpu_usage_ratio"\ncomparison = "above"', "needs a warning or a critical threshold"),
        (
            'metric = "system.cpu_usage_ratio"\ncomparison = "above"\nwarning = 0.9\ncritical = 0.8',
            "critical (0.8) must be at or above warning (0.9)",
        ),
        (
            'metric = "system.cpu_usage_ratio"\ncomparison = "above"\nwarning = 0.9\nclear = 0.95',
            "clear (0.95) must be at or below the first threshold (0.9)",
        ),
        ('metric = "system.cpu_usage_ratio"\ncomparison = "sideways"\nwarning = 1', "comparison"),
        ('metric = "system.cpu_usage_ratio"\ncomparison = "above"\nwarning = 1\nfor = 3', "for: unknown key"),
        ('metric = "obs.connection"\ncomparison = "in"', "needs `values`"),
        (
            'metric = "system.cpu_usage_ratio"\ncomparison = "above"\nwarning = 1\nsuggest = ["pray"]',
            "no playbook entry named 'pray'",
        ),
    ],
)
def test_invalid_rule_names_file_rule_and_reason(tmp_path: Path, rule: str, reason: str) -> None:
    message = 'message = "m"\n' if "message" not in rule else ""
    config = settings_with(
        tmp_path, f'[rules]\nfile = "{tmp_path / "rules.toml"}"\n', rules_file=f"[rule.broken]\n{rule}\n{message}"
    )
    with pytest.raises(ConfigError) as caught:
        load_configuration(config, environ={})
    text = str(caught.value)
    assert "'broken'" in text and str(tmp_path / "rules.toml") in text and reason in text


def test_bad_message_placeholder_is_rejected(tmp_path: Path) -> None:
    config = settings_with(tmp_path, '[rules.overrides.cpu_high]\nmessage = "CPU {cpu}"\n')
    with pytest.raises(ConfigError, match=r"cpu_high.*unknown placeholder \{cpu\}"):
        load_configuration(config, environ={})


def test_override_of_an_unknown_rule_is_an_error(tmp_path: Path) -> None:
    config = settings_with(tmp_path, "[rules.overrides.cpu_hihg]\nwarning = 0.9\n")
    with pytest.raises(ConfigError, match=r"config.toml \(rules.overrides\).*no rule named 'cpu_hihg'"):
        load_configuration(config, environ={})


def test_invalid_rule_stops_the_real_cli_with_exit_code_2_and_no_traceback(tmp_path: Path) -> None:
    config = settings_with(
        tmp_path,
        f'[rules]\nfile = "{tmp_path / "rules.toml"}"\n[logs]\nenabled = false\n[api]\nport = 0\n',
        rules_file="[rule.cpu_high]\nwarning = 0.99\ncritical = 0.5\n",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(config), "agent"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid rule 'cpu_high'" in result.stderr and str(tmp_path / "rules.toml") in result.stderr
    assert "critical (0.5) must be at or above warning (0.99)" in result.stderr


def test_brb_scene_switch_is_read_from_the_obs_backup_scene_settings(tmp_path: Path) -> None:
    from agent.rules.engine import RuleEngine

    off = settings_with(tmp_path, '[sources.obs.backup_scene]\nscene = "BRB"\n')
    assert RuleEngine.from_settings(load_settings(off, environ={})).brb_scene is None  # not enabled
    on = settings_with(tmp_path, '[sources.obs.backup_scene]\nenabled = true\nscene = "BRB"\n')
    assert RuleEngine.from_settings(load_settings(on, environ={})).brb_scene == "BRB"


def test_stream_expected_live_but_stopped_is_critical(tmp_path: Path) -> None:
    from agent.models import ObsSample
    from agent.rules.engine import RuleEngine
    from tests.agent.rules.feed import Feed, at

    config = settings_with(tmp_path, "[stream]\nexpect_live = true\n")
    feed = Feed(RuleEngine.from_settings(load_settings(config, environ={})))
    for t in range(10):
        feed.step(float(t), obs=ObsSample(taken_at=at(t), connection="connected", streaming=t < 3))
    (event,) = feed.events("stream_down")
    assert event == (8.0, "raised", "critical")  # stopped at t=3, for 5 s
    (alert,) = [a for a in feed.engine.active_alerts() if a.id == "stream_down"]
    assert alert.suggestions[0].text == "Switch to a BRB (be right back) scene"

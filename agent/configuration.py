"""The whole configuration checked at start-up: the settings and the rule set they name.

settings.py reads and validates the settings tree only; the rules, the playbook and the platform preset
are the rule engine's business (agent/rules/config.py). Commands load both here, so a bad rule stops
start-up with exit 2 and a message naming the file and the rule, and settings never import the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent.rules.config import load_rule_set
from agent.settings import Settings, load_settings, user_config_path


def load_configuration(config_path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """`load_settings`, then every rule, playbook entry and preset checked; raises one `ConfigError`."""
    settings = load_settings(config_path, environ)
    user_file = user_config_path(config_path, environ)
    load_rule_set(settings, user_origin=str(user_file) if user_file is not None else "settings")
    return settings

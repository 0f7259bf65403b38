"""The collector's own settings section, `[collector]`: nothing of the agent's configuration is read.

Layers, lowest first: defaults < the `[collector]` table of the config file (`--config`, else
`STREAMHEALTH_CONFIG`, else the platform one if it exists; the agent's sections in it are not read, so a
broken agent config never stops a collector) < `STREAMHEALTH_COLLECTOR__<NAME>` variables (and the older
`STREAMHEALTH_COLLECTOR_DATABASE`) < the command line. Read by pydantic-settings, errors worded as the
agent's (file or variable, field, reason; exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from agent import settings_errors
from agent.errors import ConfigError
from agent.settings import Environment, TomlFile, read_toml, user_config_path

SECTION = "collector"
ENV_PREFIX = "STREAMHEALTH_COLLECTOR__"
LEGACY_DATABASE_ENV = "STREAMHEALTH_COLLECTOR_DATABASE"


class CollectorSettings(BaseSettings):
    """`streamhealth collector serve | token` (docs/collector.md)."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix=ENV_PREFIX, case_sensitive=False)

    database: str | None = Field(
        None, description="sqlite:///PATH or postgresql://USER@HOST/DB; default: SQLite in the data folder"
    )
    host: str = "127.0.0.1"
    port: int = Field(8766, ge=0, le=65535)
    retention_days: float = Field(30.0, gt=0, le=36500, description="Keep raw records this many days.")
    rollup_days: float = Field(400.0, gt=0, le=36500, description="Keep per-minute rollups this many days.")
    body_deadline_s: float = Field(
        20.0, gt=0, le=600, description="A batch's body must arrive within this many seconds of its headers."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # load_collector_settings passes the layers it read


def load_collector_settings(
    config_path: Path | None, command_line: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> CollectorSettings:
    """The `[collector]` section from every layer, or one `ConfigError` naming the file or variable."""
    environ = os.environ if environ is None else environ
    layers: settings_errors.Layers = []
    sources: list[PydanticBaseSettingsSource] = []
    config_file = user_config_path(config_path, environ)
    if config_file is not None:
        table = read_toml(config_file).get(SECTION, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{config_file}: {SECTION} must be a table ([{SECTION}])", file=str(config_file))
        layers.append((str(config_file), table))
        sources.append(TomlFile(CollectorSettings, config_file, table))
    legacy = environ.get(LEGACY_DATABASE_ENV)
    if legacy:
        layers.append((f"environment variable {LEGACY_DATABASE_ENV}", {"database": legacy}))
        sources.append(InitSettingsSource(CollectorSettings, init_kwargs={"database": legacy}))
    sources.append(Environment(CollectorSettings, environ))
    merged: dict[str, Any] = {}
    try:
        for source in sources:
            merged.update(source())
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    given = {name: value for name, value in command_line.items() if value is not None}
    merged.update(given)
    try:
        return CollectorSettings(**merged)
    except ValidationError as exc:
        layers.append(("the command line", given))
        # A value given on the command line is its doing, whatever a variable said.
        unused = {
            name: value for name, value in environ.items() if name.upper().removeprefix(ENV_PREFIX).lower() not in given
        }
        raise ConfigError(
            settings_errors.describe_validation_error(exc, layers, unused, ENV_PREFIX, "__", section=SECTION)
        ) from None

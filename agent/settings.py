"""The settings tree (pydantic-settings): the only place that reads configuration files and env vars.

Layers, lowest first: model defaults < `configs/default.toml` shipped with the package < the relay's
ingest file (`streamhealth relay point-obs`) < the user's file (`--config`, `STREAMHEALTH_CONFIG`, or the
platform config folder) < `STREAMHEALTH_*` environment variables (`__` between levels:
`STREAMHEALTH_API__PORT=9000`; lists and tables as JSON). pydantic-settings reads and merges them (its
TOML and environment sources); a bad value anywhere becomes one `ConfigError` naming where it came from
(file or variable), the field path and the reason (agent/settings_errors.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from agent import paths, settings_errors
from agent.errors import ConfigError
from agent.net.addresses import is_loopback_host
from agent.notify.settings import NotifySettings
from agent.redact import redact, register_secret
from agent.settings_base import ExpandedPath, IngestUrl, Section
from agent.settings_relay import RelaySettings
from agent.ship.settings import ShipSettings

log = logging.getLogger(__name__)

ENV_PREFIX = "STREAMHEALTH_"
ENV_NESTED_DELIMITER = "__"
CONFIG_PATH_ENV = "STREAMHEALTH_CONFIG"

PlatformName = Literal["tiktok", "twitch", "youtube", "custom"]


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    token: SecretStr | None = None

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)


MAX_HISTORY_POINTS = 172_800  # 48 h at 1 s; ~50 MB of history at ~300 bytes a point (all sources)


class SamplingSettings(Section):
    # Below 0.1 s the agent would spend its time ticking (and its log grows by MBs a minute).
    interval_s: float = Field(1.0, ge=0.1, le=60)
    history_s: float = Field(6 * 3600, gt=0, le=7 * 24 * 3600)
    source_timeout_s: float = Field(5.0, gt=0, le=120)

    @model_validator(mode="after")
    def _history_fits_the_budget(self) -> SamplingSettings:
        points = self.history_s / self.interval_s
        if points > MAX_HISTORY_POINTS:
            raise ValueError(
                f"history_s / interval_s = {points:,.0f} points of history; at most {MAX_HISTORY_POINTS:,} "
                f"(e.g. 48 h at 1 s): lower history_s or raise interval_s"
            )
        return self


class LogsSettings(Section):
    dir: ExpandedPath = Field(default_factory=paths.default_logs_dir)
    max_bytes: int = Field(50 * 1024 * 1024, ge=64 * 1024)
    keep_bytes: int = Field(1024 * 1024 * 1024, ge=0)
    enabled: bool = True


class SystemSourceSettings(Section):
    enabled: bool = True
    # Minimums on every interval that scans the machine or sends traffic: 0.001 took a whole core and made
    # 1,663 TCP connects to the ingest in 16 s.
    interval_s: float | None = Field(None, ge=0.1, le=60)
    recordings_dir: ExpandedPath = Field(default_factory=Path.home)
    top_processes_count: int = Field(5, ge=0, le=50)
    process_scan_interval_s: float = Field(5.0, ge=0.2, le=300)


class NetworkSourceSettings(Section):
    enabled: bool = True
    interval_s: float = Field(2.0, ge=0.25, le=300)  # each round probes the ingest (TCP connect, ICMP): 4/s at most
    timeout_s: float = Field(2.0, gt=0, le=30)
    extra_targets: list[str] = Field(default_factory=list, max_length=32)
    icmp: bool = True
    upload_users: bool = True
    link_scan_interval_s: float = Field(10.0, ge=1.0, le=600)
    upload_users_interval_s: float = Field(30.0, ge=5.0, le=3600)  # reads every socket on the machine


def _check_obs_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("ws", "wss") or not parts.hostname:
        raise ValueError(
            "must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:4455 (OBS: Tools > WebSocket Server Settings)"
        )
    return url


class ObsBackupSceneSettings(Section):
    enabled: bool = False
    scene: str | None = None
    return_scene: str | None = None
    on_reconnecting: bool = True
    on_uplink_congested: bool = True
    drop_enter_ratio: float = Field(0.05, gt=0, le=1)
    congestion_enter_ratio: float = Field(0.5, gt=0, le=1)
    congestion_exit_ratio: float = Field(0.15, ge=0, le=1)
    enter_after_s: float = Field(5.0, ge=0, le=600)
    exit_after_s: float = Field(10.0, ge=0, le=600)
    min_hold_s: float = Field(30.0, ge=0, le=3600)


class ObsSourceSettings(Section):
    enabled: bool = True
    url: Annotated[str, AfterValidator(_check_obs_url)] = "ws://127.0.0.1:4455"
    password: SecretStr | None = None
    poll_interval_s: float = Field(1.0, ge=0.1, le=60)
    fast_poll_interval_s: float = Field(0.25, ge=0.1, le=60)
    fast_poll_congestion_ratio: float = Field(0.05, ge=0, le=1)
    request_timeout_s: float = Field(3.0, gt=0, le=60)
    max_backoff_s: float = Field(30.0, ge=1, le=3600)
    auth_retry_s: float = Field(300.0, ge=10, le=86400)
    window_s: float = Field(10.0, gt=0, le=600)
    backup_scene: ObsBackupSceneSettings = Field(default_factory=ObsBackupSceneSettings)


class FfmpegSourceSettings(Section):
    enabled: bool = True
    progress_file: ExpandedPath | None = None
    http_endpoint: bool = True
    window_s: float = Field(10.0, gt=0, le=600)
    file_poll_interval_s: float = Field(0.5, ge=0.05, le=60)
    stale_after_s: float = Field(5.0, gt=0, le=600)


class UplinkSourceSettings(Section):
    """The kernel's view of the encoder's ingest connection (Linux sock_diag); see agent/sources/uplink.py."""

    enabled: bool = True
    interval_s: float = Field(0.25, ge=0.05, le=10)
    discover_interval_s: float = Field(2.0, ge=0.2, le=60)  # walks the processes and their sockets
    find_encoder_processes: bool = True


class SourcesSettings(Section):
    system: SystemSourceSettings = Field(default_factory=SystemSourceSettings)
    network: NetworkSourceSettings = Field(default_factory=NetworkSourceSettings)
    obs: ObsSourceSettings = Field(default_factory=ObsSourceSettings)
    ffmpeg: FfmpegSourceSettings = Field(default_factory=FfmpegSourceSettings)
    uplink: UplinkSourceSettings = Field(default_factory=UplinkSourceSettings)


class BandwidthSettings(Section):
    headroom_ratio: float = Field(0.7, gt=0, le=1)
    audio_bitrate_kbps: int = Field(160, ge=0, le=1024)
    backend: Literal["speedtest", "http", "rtmp"] = "http"
    duration_s: float = Field(10.0, gt=0, le=120)
    ramp_up_s: float = Field(2.0, ge=0, le=30)
    sustained_percentile: float = Field(10.0, ge=0, le=50)
    deadline_s: float = Field(120.0, gt=0, le=900)
    http_url: str | None = None
    http_connections: int = Field(4, ge=1, le=32)
    http_download: bool = True
    speedtest_server_id: int | None = None
    speedtest_url: str | None = None
    speedtest_secure: bool = True
    speedtest_download: bool = True
    rtmp_url: str | None = None
    rtmp_start_kbps: int = Field(1000, ge=100)
    rtmp_max_kbps: int = Field(100_000, ge=100, le=200_000)
    rtmp_bandwidthtest: bool = True


class IngestSettings(Section):
    primary: IngestUrl | None = None
    backups: list[IngestUrl] = Field(default_factory=list, max_length=16)


class StreamSettings(Section):
    """What the stream is meant to be, for encoders the agent cannot ask (ffmpeg) and for the rules."""

    video_bitrate_kbps: int | None = Field(None, gt=0, le=200_000)
    audio_bitrate_kbps: int | None = Field(None, gt=0, le=2_000)
    width: int | None = Field(None, gt=0, le=8192)
    height: int | None = Field(None, gt=0, le=8192)
    fps: float | None = Field(None, gt=0, le=240)
    keyframe_interval_s: float | None = Field(None, ge=0, le=20)
    expect_live: bool = False


class RulesSettings(Section):
    """Which alert rules run and with what thresholds; the rules themselves are in configs/rules.toml."""

    file: ExpandedPath | None = None
    playbook_file: ExpandedPath | None = None
    disabled: list[str] = Field(default_factory=list, max_length=512)
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=512)


class SessionsSettings(Section):
    """Stream sessions (one live stream each): how long a stream may be down and still be the same one."""

    gap_s: float = Field(30.0, ge=0, le=3600)


@dataclass(frozen=True)
class _Layers:
    """What one `load_settings` call reads: its TOML files as read (lowest first) and its environment."""

    files: list[tuple[Path, dict[str, Any]]]
    environ: Mapping[str, str]


_LOADING: contextvars.ContextVar[_Layers | None] = contextvars.ContextVar("settings_layers", default=None)


class Settings(BaseSettings):
    """Every setting. Built by `load_settings` from the defaults, the TOML files and the environment;
    `Settings()` alone is the defaults (no file, no variable), for code and tests that want them."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, case_sensitive=False
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    bandwidth: BandwidthSettings = Field(default_factory=BandwidthSettings)
    platform: PlatformName = "custom"
    stream: StreamSettings = Field(default_factory=StreamSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    ship: ShipSettings = Field(default_factory=ShipSettings)
    sessions: SessionsSettings = Field(default_factory=SessionsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        layers = _LOADING.get()
        if layers is None:
            return (init_settings,)
        files = [TomlFile(settings_cls, path, contents) for path, contents in reversed(layers.files)]
        return (init_settings, Environment(settings_cls, layers.environ), *files)


class Environment(EnvSettingsSource):
    """The `STREAMHEALTH_*` variables of a given mapping (os.environ in use; tests pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class TomlFile(TomlConfigSettingsSource):
    """One TOML file, as `read_toml` read it (bounded in size, a broken file named in its error)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, contents: dict[str, Any]) -> None:
        self._contents = contents
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return self._contents


# --- loading -------------------------------------------------------------------------------------


MAX_CONFIG_BYTES = 1024 * 1024  # a settings file is a few KB; 1 MB bounds what parsing one can cost


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KB; a settings file is a few KB (is this the right file?)",
                file=str(path),
            )
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8",
            file=str(path),
        ) from None
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", file=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", file=str(path)) from exc


def user_config_path(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The user's config file: `--config`, else `STREAMHEALTH_CONFIG`, else the platform one if it exists."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    from_env = environ.get(CONFIG_PATH_ENV)
    if from_env:
        return Path(from_env).expanduser()
    default = paths.user_config_file()
    return default if default.is_file() else None


def load_settings(config_path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from every layer, or raise one `ConfigError` that says what to fix.

    The rules these settings name are checked by `agent.configuration.load_configuration`, which the
    commands use: the rule engine reads settings, so settings must not import it.
    """
    environ = os.environ if environ is None else environ
    files = [paths.shipped_configs_dir() / "default.toml"]
    relay_ingest = paths.relay_ingest_file()
    if relay_ingest.is_file():  # written by `streamhealth relay point-obs`
        files.append(relay_ingest)
    user_file = user_config_path(config_path, environ)
    if user_file is not None:
        files.append(user_file)
    contents = [(path, read_toml(path)) for path in files]  # a broken file: its own error, naming it
    layers: settings_errors.Layers = [(str(path), data) for path, data in contents]
    _register_raw_secrets(layers, environ)
    token = _LOADING.set(_Layers(contents, environ))
    try:
        settings = Settings()
    except SettingsError as exc:  # a list or table variable that is not JSON
        explained = settings_errors.explain_json_error(Settings, environ, ENV_PREFIX, ENV_NESTED_DELIMITER)
        raise ConfigError(redact(explained or str(exc))) from None
    except ValidationError as exc:
        raise ConfigError(
            settings_errors.describe_validation_error(exc, layers, environ, ENV_PREFIX, ENV_NESTED_DELIMITER)
        ) from None
    finally:
        _LOADING.reset(token)
    _register_settings_secrets(settings)
    for warning in settings_errors.unknown_variable_warnings(Settings, environ, ENV_PREFIX, ENV_NESTED_DELIMITER):
        log.warning("%s", warning)
    return settings


def _register_settings_secrets(settings: Settings) -> None:
    if settings.api.token is not None:
        register_secret(settings.api.token.get_secret_value())
    if settings.sources.obs.password is not None:
        register_secret(settings.sources.obs.password.get_secret_value())
    if settings.ship.token is not None:
        register_secret(settings.ship.token.get_secret_value())
    for hook in settings.notify.webhooks:
        register_secret(hook.url.get_secret_value())
    if settings.relay.publish_key is not None:
        register_secret(settings.relay.publish_key.get_secret_value())
    ingests = [settings.ingest.primary, *settings.ingest.backups, *settings.relay.destinations]
    for url in [*ingests, settings.bandwidth.rtmp_url]:
        if url:
            _register_stream_key(url)


def _register_stream_key(url: str) -> None:
    path = urlsplit(url).path.strip("/").split("/", 1)
    if len(path) == 2:
        register_secret(path[1])


_SECRET_KEYS = frozenset({"token", "password"})
_URL_KEYS = frozenset({"primary", "backups", "rtmp_url"})


def _register_raw_secrets(layers: settings_errors.Layers, environ: Mapping[str, str]) -> None:
    """Register the secrets as written, before validation: an error message about another field may
    quote the same value (a token pasted into the wrong setting), and must not print it."""

    def visit(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for inner_key, inner in value.items():
                visit(str(inner_key).lower(), inner)
        elif isinstance(value, str) and key in _SECRET_KEYS:
            register_secret(value)
        elif key in _URL_KEYS:
            for url in value if isinstance(value, list) else [value]:
                if isinstance(url, str):
                    _register_stream_key(url)

    for _, layer in layers:
        visit("", layer)
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        key = upper.rpartition(ENV_NESTED_DELIMITER)[2].removeprefix(ENV_PREFIX).lower()
        if key == "backups":
            try:
                visit(key, json.loads(value))
            except ValueError:
                continue
        else:
            visit(key, value)

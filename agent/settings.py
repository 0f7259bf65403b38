"""The settings tree (pydantic-settings): the only place that reads configuration files and env vars.

Layers, lowest first: model defaults < `configs/default.toml` shipped with the package < the user's
file (`--config`, `STREAMHEALTH_CONFIG`, or the platform config folder) < `STREAMHEALTH_*` environment
variables (`__` between levels: `STREAMHEALTH_API__PORT=9000`). A bad value anywhere becomes one
`ConfigError` naming where it came from (file or variable), the field path and the reason.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import ssl
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from agent import paths, settings_env
from agent.errors import ConfigError
from agent.notify.settings import NotifySettings
from agent.redact import redact, register_secret

log = logging.getLogger(__name__)

ENV_PREFIX = "STREAMHEALTH_"
ENV_NESTED_DELIMITER = "__"
CONFIG_PATH_ENV = "STREAMHEALTH_CONFIG"

PlatformName = Literal["tiktok", "twitch", "youtube", "custom"]


def _check_ingest_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("rtmp", "rtmps"):
        raise ValueError("must be an rtmp:// or rtmps:// URL (the server and key your platform gives you)")
    if not parts.hostname:
        raise ValueError("has no host name")
    if not parts.path.strip("/"):
        raise ValueError("has no application path (e.g. rtmp://live.twitch.tv/app/<key>)")
    return url


IngestUrl = Annotated[str, AfterValidator(_check_ingest_url)]
ExpandedPath = Annotated[Path, AfterValidator(lambda path: path.expanduser())]


class Section(BaseModel):
    """A settings section: unknown keys are errors, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid")


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    token: SecretStr | None = None

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


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
    interval_s: float | None = Field(None, gt=0, le=60)
    recordings_dir: ExpandedPath = Field(default_factory=Path.home)
    top_processes_count: int = Field(5, ge=0, le=50)
    process_scan_interval_s: float = Field(5.0, gt=0, le=300)


class NetworkSourceSettings(Section):
    enabled: bool = True
    interval_s: float = Field(2.0, gt=0, le=300)
    timeout_s: float = Field(2.0, gt=0, le=30)
    extra_targets: list[str] = Field(default_factory=list, max_length=32)
    icmp: bool = True
    upload_users: bool = True
    link_scan_interval_s: float = Field(10.0, gt=0, le=600)
    upload_users_interval_s: float = Field(30.0, gt=0, le=3600)


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
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    fast_poll_interval_s: float = Field(0.25, gt=0, le=60)
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
    file_poll_interval_s: float = Field(0.5, gt=0, le=60)
    stale_after_s: float = Field(5.0, gt=0, le=600)


class UplinkSourceSettings(Section):
    """The kernel's view of the encoder's ingest connection (Linux sock_diag); see agent/sources/uplink.py."""

    enabled: bool = True
    interval_s: float = Field(0.25, ge=0.05, le=10)
    discover_interval_s: float = Field(2.0, gt=0, le=60)
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


def _check_collector_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be the collector's base URL, e.g. http://collector.example:8766")
    return url.rstrip("/")


class ShipSettings(Section):
    """Shipping every health log line to a team collector (docs/collector.md); off while `url` is unset."""

    url: Annotated[str | None, AfterValidator(_check_collector_url)] = None
    token: SecretStr | None = None
    agent_name: str = Field(default_factory=lambda: socket.gethostname() or "agent", min_length=1, max_length=200)
    batch_max_lines: int = Field(500, ge=1, le=10000)
    batch_interval_s: float = Field(1.0, gt=0, le=300)
    timeout_s: float = Field(10.0, gt=0, le=300)
    max_backoff_s: float = Field(60.0, ge=1, le=3600)
    hard_cap_bytes: int = Field(10 * 1024 * 1024 * 1024, ge=1024 * 1024)

    @model_validator(mode="after")
    def _token_with_url(self) -> ShipSettings:
        if self.url is not None and self.token is None:
            raise ValueError(
                "ship.url is set but ship.token is not: create one with `streamhealth collector token NAME`"
            )
        return self


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:1935")
    return value


def _check_ca_file(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a file (a PEM file of CA certificates to trust for rtmps://)")
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise ValueError(f"{path} holds no usable PEM CA certificate ({exc})") from exc
    return path


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RelaySettings(Section):
    """The local RTMP relay (agent/relay/): listens when an ingest is configured and `enabled` is true."""

    enabled: bool = True
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:1935"
    disposable_drop_ms: int = Field(700, gt=0, le=60_000)
    inter_drop_ms: int = Field(900, gt=0, le=60_000)
    max_queue_ms: int = Field(10_000, gt=0, le=120_000)
    max_queue_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024, le=1024 * 1024 * 1024)
    chunk_size: int = Field(65536, ge=128, le=16 * 1024 * 1024)
    stall_ms: int = Field(2000, gt=0, le=60_000)
    idle_timeout_s: float = Field(10.0, gt=0, le=600)
    handshake_timeout_s: float = Field(5.0, gt=0, le=60)
    ingest_timeout_s: float = Field(10.0, gt=0, le=120)
    finish_timeout_s: float = Field(5.0, ge=0, le=120)
    # Resilience toward the ingest (agent/relay/failover.py).
    stall_s: float = Field(3.0, gt=0, le=120, description="Nothing acknowledged this long while media waits: lost.")
    failover_after_s: float = Field(3.0, ge=0, le=600, description="Reconnect this long, then try the next ingest.")
    return_to_primary: Literal["never", "after_probe"] = "never"
    return_after_s: float = Field(30.0, gt=0, le=3600, description="The primary answered probes this long: go back.")
    destinations: list[IngestUrl] = Field(
        default_factory=list, description="More ingests that get the same stream, each on its own (e.g. YouTube)."
    )
    # rtmps:// is always verified against the system's CAs; ca_file adds more (a private CA), never fewer.
    ca_file: Annotated[Path, AfterValidator(_check_ca_file)] | None = None
    publish_key: SecretStr | None = Field(
        None, description="The stream key encoders must publish with; required when listening beyond loopback."
    )

    @model_validator(mode="after")
    def _key_beyond_loopback(self) -> RelaySettings:
        if not _is_loopback(self.host) and self.publish_key is None:
            raise ValueError(
                f"relay.listen = {self.listen} accepts encoders from other machines: set relay.publish_key "
                "(the stream key they must use), or listen on 127.0.0.1"
            )
        if self.publish_key is not None and not self.publish_key.get_secret_value():
            raise ValueError("relay.publish_key is empty")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        case_sensitive=False,
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
        environ = _environ_override.get()
        if environ is not None:
            env_settings = _MappingEnvSource(settings_cls, environ)
        return (init_settings, env_settings, _LayeredTomlSource(settings_cls))


# --- loading -------------------------------------------------------------------------------------

_toml_layers: ContextVar[tuple[dict[str, Any], ...]] = ContextVar("_toml_layers", default=())
_environ_override: ContextVar[Mapping[str, str] | None] = ContextVar("_environ_override", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """Environment variables from a given mapping instead of `os.environ` (tests, embedded agents)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given_environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._given_environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _LayeredTomlSource(PydanticBaseSettingsSource):
    """The TOML files, already read and deep-merged by `load_settings` (lowest layer first)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        raise NotImplementedError  # __call__ below returns the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for layer in _toml_layers.get():
            _deep_merge(merged, layer)
        return merged


def _deep_merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _deep_merge(into[key], value)
        else:
            into[key] = value


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
    default_file = paths.shipped_configs_dir() / "default.toml"
    user_file = user_config_path(config_path, environ)
    layers: list[tuple[str, dict[str, Any]]] = [(str(default_file), read_toml(default_file))]
    relay_ingest = paths.relay_ingest_file()
    if relay_ingest.is_file():  # written by `streamhealth relay point-obs`
        layers.append((str(relay_ingest), read_toml(relay_ingest)))
    if user_file is not None:
        layers.append((str(user_file), read_toml(user_file)))

    _register_raw_secrets(layers, os.environ if environ is None else environ)
    layers_token = _toml_layers.set(tuple(layer for _, layer in layers))
    environ_token = _environ_override.set(environ)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, layers, environ)) from None
    except SettingsError as exc:
        explained = settings_env.explain_parse_error(
            Settings, os.environ if environ is None else environ, ENV_PREFIX, ENV_NESTED_DELIMITER
        )
        raise ConfigError(redact(explained or f"environment: {exc}")) from None
    finally:
        _toml_layers.reset(layers_token)
        _environ_override.reset(environ_token)
    _register_settings_secrets(settings)
    for warning in settings_env.unknown_variable_warnings(
        Settings, os.environ if environ is None else environ, ENV_PREFIX, ENV_NESTED_DELIMITER
    ):
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


def _register_raw_secrets(layers: list[tuple[str, dict[str, Any]]], environ: Mapping[str, str]) -> None:
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


def _describe_validation_error(
    exc: ValidationError, layers: list[tuple[str, dict[str, Any]]], environ: Mapping[str, str] | None
) -> str:
    environ = os.environ if environ is None else environ
    lines = ["invalid configuration:"]
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        field = ".".join(loc) or "(top level)"
        origin = _origin_of(loc, layers, environ)
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            reason = "unknown setting (check the spelling; configs/default.toml lists every setting)"
        elif "input" in error and error["type"] != "missing" and not _is_secret_field(loc):
            shown = redact(repr(error["input"]))
            reason = f"{reason} (got {shown[:80]})"
        lines.append(f"  {origin}: {field}: {redact(reason)}")
    return "\n".join(lines)


def _is_secret_field(loc: list[str]) -> bool:
    # Ingest URLs carry the stream key, possibly in a form `redact` cannot recognise (a mistyped scheme).
    return bool(
        set(loc) & {"token", "password", "key", "stream_key", "primary", "backups", "rtmp_url", "webhooks", "url"}
    )


def _origin_of(loc: list[str], layers: list[tuple[str, dict[str, Any]]], environ: Mapping[str, str]) -> str:
    env_names = {name.upper(): name for name in environ}
    for depth in range(len(loc), 0, -1):
        candidate = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc[:depth]).upper()
        if candidate in env_names:
            return f"environment variable {env_names[candidate]}"
    for file_name, layer in reversed(layers):
        node: Any = layer
        for part in loc:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return str(file_name)
    return "settings"

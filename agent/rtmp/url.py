"""RTMP ingest URLs, split the way encoders split them (`rtmp://host[:port]/app/key`).

Shared by the publisher and anything else that must name an ingest without leaking its stream key:
every error message shows the URL with the key redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from agent.errors import ConfigError
from agent.redact import MARK, redact, redact_url

DEFAULT_PORTS: Final = {"rtmp": 1935, "rtmps": 443}


@dataclass(frozen=True)
class RtmpUrl:
    """An ingest URL split the way encoders split it: the app is the first path segment, the rest is the key."""

    scheme: str
    host: str
    port: int
    app: str
    stream_key: str  # everything after the app, query string included (`key?bandwidthtest=true`)
    tc_url: str  # scheme://host[:port]/app, as sent in connect

    @property
    def tls(self) -> bool:
        return self.scheme == "rtmps"

    def redacted(self) -> str:
        return redact_url(f"{self.tc_url}/{self.stream_key}")


def parse_rtmp_url(url: str) -> RtmpUrl:
    """Split an `rtmp://` / `rtmps://` URL; raises ConfigError (with the key redacted) when it cannot be used."""
    shown = _shown_url(url)
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"{shown} is not an rtmp:// or rtmps:// URL: check ingest.primary")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ConfigError(f"{shown} has an invalid port: check ingest.primary") from exc
    if not parts.hostname:
        raise ConfigError(f"{shown} has no host: check ingest.primary")
    path = parts.path.lstrip("/")
    app, _, key = path.partition("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    if not app:
        raise ConfigError(f"{shown} has no application name (rtmp://host/APP/KEY): check ingest.primary")
    if not key or key.startswith("?"):
        raise ConfigError(f"{shown} has no stream key (rtmp://host/app/KEY): check ingest.primary")
    netloc = parts.netloc.rpartition("@")[2]
    return RtmpUrl(scheme, parts.hostname, port, app, key, f"{scheme}://{netloc}/{app}")


def _shown_url(url: str) -> str:
    """A URL fit for an error message even when it is malformed: everything after the app is redacted."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2]
    app, _, rest = parts.path.lstrip("/").partition("/")
    tail = f"/{MARK}" if rest or parts.query else ""
    return redact(f"{parts.scheme}://{host}/{app}{tail}" if app else f"{parts.scheme}://{host}")

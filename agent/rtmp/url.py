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
# Schemes an error message may name (a user who pasted the wrong kind of URL); any other "scheme" may be
# the start of a key (`live_123:abc` parses as one).
_NAMED_SCHEMES: Final = frozenset({*DEFAULT_PORTS, "rtmpt", "rtmpe", "rtmpts", "srt", "rtsp", "http", "https", "udp"})


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
    """A URL fit for an error message whatever its shape: scheme (if rtmp:// or rtmps://), host and port,
    and the application name only when a key follows it; any other path, the query, user info and a
    malformed port are redacted. (`rtmp://host/KEY` and a bare key have no app: their one path segment
    may well be the key.)"""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in _NAMED_SCHEMES or not host:
        return MARK
    try:
        port = parts.port
    except ValueError:
        port, host = None, f"{host}:{MARK}"
    if port is not None:
        host = f"{host}:{port}"
    app, _, rest = parts.path.lstrip("/").partition("/")
    if rest and app:
        path = f"/{app}/{MARK}"
    elif parts.path.strip("/") or parts.query or parts.fragment:
        path = f"/{MARK}"
    else:
        path = ""
    return redact(f"{scheme}://{host}{path}")

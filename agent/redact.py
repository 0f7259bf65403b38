"""Redaction of stream keys, passwords and tokens: the one function every output path goes through.

Stream keys are secrets: whoever has one can stream as the owner. Nothing the agent writes to a log,
serves over HTTP, or prints may carry one in clear. Redaction works two ways, both needed:
structurally (the path after an RTMP application name, `key=`/`password=`/`token=` pairs, JSON fields,
Bearer credentials) and by value (secrets registered from the settings at start-up, wherever they appear).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlsplit

MARK = "<redacted>"

# Query parameters of ingest URLs that are conventions, not credentials: keep them visible.
_HARMLESS_QUERY_NAMES = frozenset({"bandwidthtest", "backup"})

# Registered secrets shorter than this are redacted only structurally: replacing a three-letter key
# such as "obs" everywhere would mangle ordinary words ("sources.obs.password").
MIN_REGISTERED_SECRET_LENGTH = 6

_SECRET_NAMES = r"(?:stream[_-]?key|streamkey|key|password|passwd|pass|token|secret|auth|sign|signature|api[_-]?key)"

_STREAM_URL = re.compile(r"\b(rtmps?|rtmpt|rtmpe|srt)://([^\s/\"'<>]+)((?:/[^\s\"'<>]*)?)", re.IGNORECASE)
_JSON_FIELD = re.compile(rf'("{_SECRET_NAMES}"\s*:\s*")((?:[^"\\]|\\.)*)(")', re.IGNORECASE)
_ASSIGNMENT = re.compile(
    rf"(?<![\w.-])({_SECRET_NAMES})(\s*[=:]\s*)(?!{re.escape(MARK)})([^\s&,;\"'<>]+)", re.IGNORECASE
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+(?!<redacted>)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_TWITCH_KEY = re.compile(r"\blive_\d+_[A-Za-z0-9]{10,}\b")

_registered: set[str] = set()
_registered_lock = threading.Lock()
_registered_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret value (a stream key, password, token) so it is redacted wherever it appears."""
    global _registered_pattern
    if not value or len(value) < MIN_REGISTERED_SECRET_LENGTH:
        return
    with _registered_lock:
        if value in _registered:
            return
        _registered.add(value)
        ordered = sorted(_registered, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def forget_registered_secrets() -> None:
    """For tests: start again with no registered secrets."""
    global _registered_pattern
    with _registered_lock:
        _registered.clear()
        _registered_pattern = None


def redact_url(url: str) -> str:
    """An ingest URL with its stream key and credentials replaced: keeps scheme, host, port and app.

    `rtmp://live.twitch.tv/app/live_123_abc` -> `rtmp://live.twitch.tv/app/<redacted>`;
    a query string keeps only harmless conventions such as `bandwidthtest=true`.
    """
    match = _STREAM_URL.fullmatch(url.strip())
    if match is None:
        return redact(url)
    return _redact_stream_url(match)


def _redact_stream_url(match: re.Match[str]) -> str:
    scheme, authority, rest = match.group(1), match.group(2), match.group(3)
    if "@" in authority:  # user:password@host
        authority = f"{MARK}@{authority.rsplit('@', 1)[1]}"
    path, _, query = rest.partition("?")
    segments = path.split("/")  # ["", "app", "key", ...]
    if len(segments) > 2 and any(segments[2:]):
        path = "/".join([*segments[:2], MARK])
    if query:
        kept = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            kept.append(f"{name}={value}" if name.lower() in _HARMLESS_QUERY_NAMES else f"{name}={MARK}")
        query = "&".join(kept)
        path = f"{path}?{query}"
    return f"{scheme}://{authority}{path}"


# Literal hints, checked with `in` on the lower-cased text before each (much slower) regex runs: every
# tick's record goes through `redact`, and most of it holds no secret at all. Each regex can only match
# where one of its hints occurs, so skipping it when none does changes nothing but the cost.
_NAME_ENDINGS = ("key", "password", "passwd", "pass", "token", "secret", "auth", "sign", "signature")
_URL_HINTS = ("rtmp", "srt://")
_BEARER_HINTS = ("bearer", "basic")


def _any_in(hints: tuple[str, ...], lowered: str) -> bool:
    return any(hint in lowered for hint in hints)


def _names_present(lowered: str) -> list[str]:
    return [name for name in _NAME_ENDINGS if name in lowered]


def _json_field_hint(names: list[str], lowered: str) -> bool:
    return any(f'{name}"' in lowered for name in names)


def _assignment_hint(names: list[str], lowered: str) -> bool:
    """Is any secret name followed (after spaces or tabs) by `=` or `:`? One look at each occurrence of
    each name, not a scan of the whole text per name and separator (a tick record holds "keyframe")."""
    for name in names:
        start = lowered.find(name)
        while start != -1:
            after = lowered[start + len(name) : start + len(name) + 3].lstrip(" \t")
            if after[:1] in ("=", ":"):
                return True
            start = lowered.find(name, start + 1)
    return False


def redact(text: str) -> str:
    """Return `text` with every stream key, password and token it contains replaced by `<redacted>`."""
    if not text:
        return text
    pattern = _registered_pattern
    if pattern is not None:
        text = pattern.sub(MARK, text)
    lowered = text.lower()
    if _any_in(_URL_HINTS, lowered):
        text = _STREAM_URL.sub(_redact_stream_url, text)
    names = _names_present(lowered)  # most text holds none of the secret names: both checks end here
    if names and _json_field_hint(names, lowered):
        text = _JSON_FIELD.sub(lambda m: f"{m.group(1)}{MARK}{m.group(3)}", text)
    if names and _assignment_hint(names, lowered):
        text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    if _any_in(_BEARER_HINTS, lowered):
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MARK}", text)
    if "live_" in text:
        text = _TWITCH_KEY.sub(MARK, text)
    return text


def url_host_port(url: str, default_ports: dict[str, int] | None = None) -> tuple[str, int]:
    """Host and port of an ingest URL (rtmp 1935, rtmps 443 unless the URL says otherwise)."""
    ports = default_ports or {"rtmp": 1935, "rtmps": 443}
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or ports.get(parts.scheme.lower(), 1935)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's final message (and drops its args)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg = redact(message)
        record.args = None
        return True

"""Follows the settings layer `streamhealth relay point-obs` writes, so the relay takes a new ingest without
the agent restarting.

The layer (paths.relay_ingest_file()) sits below the user's config: an `ingest.primary` in the config or the
environment wins, as it does at start-up, and then the layer is not followed at all. Only a stat per tick
while nothing changes. Not for deciding when the relay may switch (relay.py: between streams only).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from agent import paths
from agent.errors import ConfigError
from agent.redact import redact, register_secret
from agent.settings import IngestSettings, read_toml

log = logging.getLogger("agent.relay.relay")


class IngestLayerWatch:
    """`poll()` returns the layer's new ingest (None when it has not changed, "" when it was removed)."""

    def __init__(self, configured_primary: str | None, path: Path | None = None) -> None:
        self._path = path or paths.relay_ingest_file()
        self._stamp = self._stat()
        at_start = self._read() if self._stamp is not None else None
        # The agent's ingest came from this layer (or there was none): follow it. Else the user's wins.
        self.follows = configured_primary is None or configured_primary == at_start

    def _stat(self) -> tuple[int, int] | None:
        try:
            status = self._path.stat()
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    def _read(self) -> str | None:
        try:
            layer = read_toml(self._path)
            ingest = IngestSettings.model_validate(layer.get("ingest") or {})
        except (ConfigError, ValidationError, AttributeError) as exc:
            log.warning("relay: %s is not usable, the relay keeps its ingest: %s", self._path, redact(str(exc))[:300])
            return None
        if ingest.primary:
            register_secret(ingest.primary.rsplit("/", 1)[-1])
        return ingest.primary

    def poll(self) -> str | None:
        if not self.follows:
            return None
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        if stamp is None:
            return ""  # `point-obs --undo` removed it
        return self._read()

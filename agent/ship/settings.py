"""The `[ship]` settings section: the team collector the agent ships its health log to."""

from __future__ import annotations

import socket
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, model_validator

from agent.settings_base import Section


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

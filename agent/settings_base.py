"""Building blocks of the settings sections, shared by `agent/settings.py` and the sections that live in
their capability's own folder (`agent/relay/settings.py`, `agent/ship/settings.py`, `agent/notify/settings.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict


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

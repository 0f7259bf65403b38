"""Small JSON state files that survive a crash or a power cut at any instant.

Written whole to a temporary file, fsynced, then renamed over the old one (and the folder fsynced), so a
reader finds either the old content or the new, never half of each. A file that is unreadable anyway
(a disk that lied about fsync, a hand edit) is moved aside as `<name>.corrupt` and reported as absent:
the callers know how to rebuild their state without it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    payload = json.dumps(data, separators=(",", ":")).encode()
    with temporary.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; its rename is already durable enough for NTFS
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, or None when missing or unreadable (then moved aside and logged)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except ValueError as exc:
        aside = path.with_name(path.name + ".corrupt")
        log.error("%s is unreadable (%s); moved to %s and rebuilt", path, exc, aside.name)
        try:
            os.replace(path, aside)
        except OSError as move_error:
            log.error("cannot move %s aside: %s", path, move_error.strerror)
        return None

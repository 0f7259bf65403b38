"""Which process is which, kept up to date for the price of one listing of the process table.

Finding the encoder (OBS, ffmpeg, ...) means knowing every process's name. Reading every name on each
look costs one open/read/close per process: on a desktop with a few hundred processes, done every few
seconds, that was the largest part of the agent's idle CPU. Names rarely change, so this keeps them:
each look lists the pids and reads only the processes it has not seen. Two cases would go stale and are
covered: a process that `exec`s soon after it starts (a shell script ending in `exec ffmpeg ...`) is
read again while it is young, and every `full_refresh_s` all names are read again (a pid reused between
two looks, a late rename).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psutil

YOUNG_S = 10.0
FULL_REFRESH_S = 60.0

Kind = TypeVar("Kind", bound=str)


class ProcessNames:
    def __init__(
        self,
        *,
        young_s: float = YOUNG_S,
        full_refresh_s: float = FULL_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.young_s = young_s
        self.full_refresh_s = full_refresh_s
        self.clock = clock
        self._names: dict[int, str] = {}
        self._first_seen: dict[int, float] = {}  # only pids still young
        self._full_at = -float("inf")

    def refresh(self) -> dict[int, str]:
        """pid -> name for every process now running (that we may read)."""
        now = self.clock()
        current = set(psutil.pids())
        if now - self._full_at >= self.full_refresh_s:
            self._full_at = now
            self._names.clear()
            self._first_seen.clear()
        for gone in self._names.keys() - current:
            del self._names[gone]
        for pid, seen_at in list(self._first_seen.items()):
            if pid not in current or now - seen_at >= self.young_s:
                del self._first_seen[pid]
        unknown = current - self._names.keys()
        for pid in unknown | self._first_seen.keys():
            name = _name_of(pid)
            if name is None:
                self._names.pop(pid, None)
                continue
            self._names[pid] = name
            if pid in unknown and self._full_at != now:
                self._first_seen[pid] = now
        return self._names

    def replace(self, names: dict[int, str]) -> None:
        """Adopt a full reading someone else just made (the system source's scan reads every name)."""
        self._names = dict(names)
        self._first_seen.clear()
        self._full_at = self.clock()

    def matching(self, kind_of: Callable[[str], Kind | None]) -> list[tuple[psutil.Process, Kind]]:
        """The processes whose name `kind_of` recognises, with that kind, in pid order."""
        found: list[tuple[psutil.Process, Kind]] = []
        for pid, name in sorted(self.refresh().items()):
            kind = kind_of(name)
            if kind is None:
                continue
            try:
                found.append((psutil.Process(pid), kind))
            except psutil.Error:
                continue
        return found


def _name_of(pid: int) -> str | None:
    try:
        return str(psutil.Process(pid).name())
    except (psutil.Error, OSError):
        return None

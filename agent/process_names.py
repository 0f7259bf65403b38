"""Which process is which, kept up to date for the price of one listing of the process table, or less.

Finding the encoder (OBS, ffmpeg, ...) means knowing every process's name. Reading every name on each
look costs one open/read/close per process: on a desktop with a few hundred processes, done every few
seconds, that was the largest part of the agent's idle CPU. Names rarely change, so this keeps them:
each look lists the pids and reads only the processes it has not seen. On Linux a look first reads the
last pid the kernel handed out (/proc/loadavg): unchanged means nothing was started, and even the
listing is skipped. Two cases would go stale and are covered: a process that `exec`s soon after it
starts (a shell script ending in `exec ffmpeg ...`) is read again while it is young, and every
`full_refresh_s` all names are read again (a pid reused between two looks, a late rename).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TypeVar

import psutil

from agent import os_features
from agent.models.system import EncoderKind

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
        self._last_pid: int | None = None

    def refresh(self) -> dict[int, str]:
        """pid -> name for every process now running (that we may read). Between listings it may still
        hold a process that exited since; `matching` skips those."""
        now = self.clock()
        full = now - self._full_at >= self.full_refresh_s
        last_pid = _last_pid_created()
        if not full and last_pid is not None and last_pid == self._last_pid:
            # Nothing was started since the last listing (no pid was handed out): no new names, only
            # the young processes' to read again, and no listing of the process table.
            self._reread_young(now, None)
            return self._names
        self._last_pid = last_pid  # read before listing: a process started meanwhile shows next time
        current = set(psutil.pids())
        if full:
            self._full_at = now
            self._names.clear()
            self._first_seen.clear()
        for gone in self._names.keys() - current:
            del self._names[gone]
        unknown = current - self._names.keys()
        for pid in unknown:
            name = _name_of(pid)
            if name is None:
                continue
            self._names[pid] = name
            if not full:
                self._first_seen[pid] = now
        self._reread_young(now, current, skip=unknown)
        return self._names

    def _reread_young(self, now: float, current: set[int] | None, skip: AbstractSet[int] = frozenset()) -> None:
        for pid, seen_at in list(self._first_seen.items()):
            if (current is not None and pid not in current) or now - seen_at >= self.young_s:
                del self._first_seen[pid]
            elif pid not in skip:
                name = _name_of(pid)
                if name is None:
                    del self._first_seen[pid]
                    self._names.pop(pid, None)
                else:
                    self._names[pid] = name

    def replace(self, names: dict[int, str]) -> None:
        """Adopt a full reading someone else just made (the system source's scan reads every name)."""
        self._names = dict(names)
        self._first_seen.clear()
        self._last_pid = None  # unknown as of that reading: the next look lists
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


def _last_pid_created() -> int | None:
    """The pid most recently handed out (Linux: the last field of /proc/loadavg, see proc(5)); None where
    there is no such file, and then every look lists the process table."""
    proc_net = os_features.current().proc_net
    if proc_net is None:
        return None
    try:
        return int((proc_net.parent / "loadavg").read_bytes().split()[4])
    except (OSError, IndexError, ValueError):
        return None


def _name_of(pid: int) -> str | None:
    try:
        return str(psutil.Process(pid).name())
    except (psutil.Error, OSError):
        return None


def encoder_kind(process_name: str) -> EncoderKind | None:
    """Which encoder a process name belongs to (OBS Studio, Streamlabs, TikTok LIVE Studio, ffmpeg)."""
    name = process_name.lower().removesuffix(".exe")
    if name in ("obs", "obs64", "obs32", "obs-studio"):
        return "obs"
    if "streamlabs" in name:
        return "streamlabs"
    if "tiktok" in name and "live" in name:
        return "tiktok_live_studio"
    if name in ("ffmpeg", "ffmpeg-static"):
        return "ffmpeg"
    return None

"""Windows and macOS as the agent sees them, on this Linux machine: every Linux-only reader switched off
at the one seam (agent/os_features.py), and a guard that records any reader that goes around it.

`socket.TCP_INFO` is removed, a TCP_INFO getsockopt, a read of /proc/net or /sys/class/net and running
`ss` are refused (as they would fail there) and recorded as violations. What cannot be switched off
from Python, psutil's own way of reading this OS, is psutil's portability, not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import os_features
from agent.os_features import OsFeatures

_LINUX_ONLY_PATHS = ("/proc/net", "/sys/class/net")
_TCP_INFO_OPTION = 11  # linux/tcp.h


class OtherPlatform:
    def __init__(self, features: OsFeatures) -> None:
        self.features = features
        self.violations: list[str] = []

    def refuse(self, what: str) -> OSError:
        self.violations.append(what)
        return OSError(f"{what}: not on {self.features.platform}")


@contextlib.contextmanager
def as_on(platform: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[OtherPlatform]:
    other = OtherPlatform(os_features.detect(platform))

    def linux_only(path: object) -> bool:
        return str(path).startswith(_LINUX_ONLY_PATHS)

    read_text, exists, is_dir = Path.read_text, Path.exists, Path.is_dir

    def guarded_read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if linux_only(self):
            raise other.refuse(f"read {self}")
        return read_text(self, *args, **kwargs)

    def guarded_exists(self: Path, *args: Any, **kwargs: Any) -> bool:
        if linux_only(self):
            other.refuse(f"looked at {self}")
            return False
        return exists(self, *args, **kwargs)

    def guarded_is_dir(self: Path, *args: Any, **kwargs: Any) -> bool:
        if linux_only(self):
            other.refuse(f"looked at {self}")
            return False
        return is_dir(self, *args, **kwargs)

    getsockopt = socket.socket.getsockopt

    def guarded_getsockopt(self: socket.socket, level: int, option: int, *args: Any) -> Any:
        if level == socket.IPPROTO_TCP and option == _TCP_INFO_OPTION:
            raise other.refuse("getsockopt(TCP_INFO)")
        return getsockopt(self, level, option, *args)

    create_subprocess_exec = asyncio.create_subprocess_exec

    async def guarded_exec(program: str, *args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        if Path(program).name == "ss":
            raise other.refuse("ran ss")
        return await create_subprocess_exec(program, *args, **kwargs)

    monkeypatch.delattr(socket, "TCP_INFO", raising=False)
    monkeypatch.delattr(socket, "AF_NETLINK", raising=False)
    monkeypatch.setattr(Path, "read_text", guarded_read_text)
    monkeypatch.setattr(Path, "exists", guarded_exists)
    monkeypatch.setattr(Path, "is_dir", guarded_is_dir)
    monkeypatch.setattr(socket.socket, "getsockopt", guarded_getsockopt)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", guarded_exec)
    with os_features.overridden(other.features):
        yield other

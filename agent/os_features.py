"""What the operating system offers the agent: the one seam for every Linux-only reader.

Most streamers run Windows or macOS. psutil, sockets, asyncio, HTTP and the encoders' protocols work
everywhere; a few readings exist only on Linux, and each of them asks here first:

    tcp_info        the kernel's per-connection RTT, retransmits and acked bytes (getsockopt TCP_INFO)
    proc_net        /proc/net: the default-route interface and the Wi-Fi signal
    sys_class_net   /sys/class/net: whether that interface is wired or Wi-Fi
    ss              `ss -tinp` (iproute2): which other processes upload, per socket
    sock_diag       netlink sock_diag: tcp_info of the encoder's own connection to the ingest (uplink)

Where one is missing the agent measures everything else and says "not available on this platform" for
that one (`unavailable()`, served in the snapshot's agent info). Tests switch them off here, the way
Windows or macOS would see them (tests/platform_neutral.py), and the whole agent must still run.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NOT_AVAILABLE = "not available on this platform"


@dataclass(frozen=True)
class OsFeatures:
    platform: str  # sys.platform: linux, win32, darwin
    tcp_info: int | None  # the getsockopt option number; None where the kernel has no TCP_INFO
    proc_net: Path | None  # /proc/net
    sys_class_net: Path | None  # /sys/class/net
    ss: str | None  # the `ss` command's path
    sock_diag: bool = False  # netlink sock_diag: the kernel's tcp_info of other processes' connections

    def unavailable(self) -> dict[str, str]:
        """Each missing feature with what the agent does without it (shown to users as is)."""
        missing: dict[str, str] = {}
        if self.tcp_info is None:
            missing["tcp_info"] = (
                f"kernel TCP statistics (TCP_INFO): {NOT_AVAILABLE}; RTT comes from TCP connect probes and "
                "bandwidth tests count acknowledged bytes from the protocol"
            )
        if self.proc_net is None:
            missing["default_route"] = f"default-route interface and Wi-Fi signal (/proc/net): {NOT_AVAILABLE}"
        if self.sys_class_net is None:
            missing["link_kind"] = f"wired or Wi-Fi (/sys/class/net): {NOT_AVAILABLE}"
        if not self.sock_diag:
            missing["uplink"] = (
                f"the encoder's own connection from the kernel (sock_diag): {NOT_AVAILABLE}; "
                "upload health comes from the encoder's and probes' figures"
            )
        if self.ss is None:
            missing["upload_users"] = (
                f"other processes' uploads (ss -tinp): {NOT_AVAILABLE}"
                if self.platform.startswith("linux")
                else f"other processes' uploads: {NOT_AVAILABLE}"
            )
        return missing


def detect(platform: str = sys.platform) -> OsFeatures:
    """What this machine offers; `platform` other than Linux switches every Linux-only reader off."""
    if not platform.startswith("linux"):
        return OsFeatures(platform=platform, tcp_info=None, proc_net=None, sys_class_net=None, ss=None, sock_diag=False)
    proc_net, sys_class_net = Path("/proc/net"), Path("/sys/class/net")
    return OsFeatures(
        platform=platform,
        tcp_info=getattr(socket, "TCP_INFO", None),
        proc_net=proc_net if proc_net.is_dir() else None,
        sys_class_net=sys_class_net if sys_class_net.is_dir() else None,
        ss=shutil.which("ss"),
        sock_diag=hasattr(socket, "AF_NETLINK"),
    )


_current = detect()


def current() -> OsFeatures:
    return _current


@contextlib.contextmanager
def overridden(features: OsFeatures) -> Iterator[OsFeatures]:
    """Run with `features` instead of the detected ones (tests: another platform; a missing `ss`)."""
    global _current
    before = _current
    _current = features
    try:
        yield features
    finally:
        _current = before


def release_freed_memory() -> None:
    """Hand the heap pages freed by start-up (imports, schema building) back to the OS: glibc keeps them
    otherwise, and they count in the agent's RSS for as long as it runs (about 1.5 MB). Elsewhere: nothing."""
    if not current().platform.startswith("linux"):
        return
    import ctypes  # only here: most commands never need it

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to hand back this way
        return

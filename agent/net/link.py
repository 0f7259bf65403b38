"""Facts about the uplink: default-route interface, wired or Wi-Fi, signal, speed, other uploaders.

Cheap reads of /proc and /sys (Linux) and psutil, done on a slow interval. Other processes' upload
comes from `ss -tinp` (per-socket byte counters), which shows other users' sockets only to root;
where that is not available the sample says why instead of guessing. Which of these this system
offers is agent/os_features.py's answer, not a check of its own here.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from agent import os_features
from agent.models import LinkInfo, UploadUser
from agent.models.network import LinkKind
from agent.net.route import default_route_interface

SS_TIMEOUT_S = 3.0
MIN_REPORTED_BPS = 8_000.0
MAX_UPLOAD_USERS = 5
_USERS = re.compile(r'\("([^"]*)",pid=(\d+),')
_BYTES_ACKED = re.compile(r"\bbytes_acked:(\d+)")


def wifi_signal_dbm(interface: str, wireless_table: Path | None = None) -> float | None:
    """Signal level of a Wi-Fi interface from /proc/net/wireless (dBm), if the driver reports it."""
    if wireless_table is None:
        proc_net = os_features.current().proc_net
        if proc_net is None:
            return None
        wireless_table = proc_net / "wireless"
    try:
        lines = wireless_table.read_text().splitlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() != interface:
            continue
        fields = rest.split()
        if len(fields) >= 3:
            try:
                level = float(fields[2].rstrip("."))
            except ValueError:
                return None
            return level if level < 0 else level - 256  # some drivers report an unsigned byte
    return None


def link_info(sys_class_net: Path | None = None) -> LinkInfo:
    features = os_features.current()
    if features.proc_net is None:
        return LinkInfo(note=features.unavailable()["default_route"])
    interface = default_route_interface()
    if interface is None:
        return LinkInfo(note="no IPv4 default route")
    kind: LinkKind = "unknown"
    signal = None
    note = None
    sys_class_net = sys_class_net or features.sys_class_net
    if sys_class_net is None:
        note = features.unavailable()["link_kind"]
    else:
        if (sys_class_net / interface / "wireless").exists():
            kind = "wifi"
            signal = wifi_signal_dbm(interface)
        elif (sys_class_net / interface / "device").exists():
            kind = "wired"
    speed: int | None = None
    try:
        stats = psutil.net_if_stats().get(interface)
    except OSError:
        stats = None
    if stats is not None and stats.speed > 0:
        speed = int(stats.speed)
    return LinkInfo(interface=interface, kind=kind, wifi_signal_dbm=signal, link_speed_mbps=speed, note=note)


@dataclass
class UploadUsersScanner:
    """Per-process upload rates from successive `ss -tinp` scans (Linux, root for other users)."""

    own_pid: int = field(default_factory=os.getpid)
    _previous: dict[tuple[str, int], int] = field(default_factory=dict)
    _previous_at: float | None = None

    def unavailable_reason(self) -> str | None:
        features = os_features.current()
        if features.ss is None:
            if features.platform.startswith("linux"):
                return "needs the 'ss' command (iproute2)"
            return features.unavailable()["upload_users"]
        if os.geteuid() != 0:
            return "only this user's processes are visible (other users' sockets need root)"
        return None

    async def scan(self) -> list[UploadUser]:
        ss = os_features.current().ss
        if ss is None:
            return []
        process = await asyncio.create_subprocess_exec(
            ss, "-tinpH", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            async with asyncio.timeout(SS_TIMEOUT_S):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            return []
        return self.update(output.decode(errors="replace"), time.monotonic())

    def update(self, ss_output: str, now: float) -> list[UploadUser]:
        """Turn one `ss -tinpH` output into rates against the previous one."""
        current: dict[tuple[str, int], int] = {}
        names: dict[int, str] = {}
        header: tuple[str, list[tuple[str, int]]] | None = None
        for line in ss_output.splitlines():
            if not line.strip():
                continue
            if not line[0].isspace():
                fields = line.split()
                socket_id = " ".join(fields[3:5]) if len(fields) >= 5 else line
                users = [(name, int(pid)) for name, pid in _USERS.findall(line)]
                header = (socket_id, users)
                continue
            match = _BYTES_ACKED.search(line)
            if header is None or match is None:
                continue
            socket_id, users = header
            for name, pid in users[:1]:  # a socket shared by several processes counts once
                current[(socket_id, pid)] = int(match.group(1))
                names[pid] = name
            header = None
        rates: dict[int, float] = {}
        if self._previous_at is not None and now > self._previous_at:
            elapsed = now - self._previous_at
            for key, acked in current.items():
                before = self._previous.get(key)
                if before is not None and acked >= before:
                    rates[key[1]] = rates.get(key[1], 0.0) + (acked - before) * 8 / elapsed
        self._previous, self._previous_at = current, now
        found = [
            UploadUser(pid=pid, name=names[pid], sent_bps=round(rate, 1))
            for pid, rate in rates.items()
            if pid != self.own_pid and rate >= MIN_REPORTED_BPS
        ]
        return sorted(found, key=lambda user: -(user.sent_bps or 0))[:MAX_UPLOAD_USERS]

"""Which interface carries the uplink: the IPv4 default route, read from the kernel's routing table.

Here in agent/net/, beside the link facts that need it (link.py), so the system source and the network
code both look down to it; not a measurement of its own.
"""

from __future__ import annotations

from pathlib import Path

from agent import os_features


def default_route_interface(route_table: Path | None = None) -> str | None:
    """The interface of the IPv4 default route (Linux /proc/net/route); None where the OS has no such table."""
    if route_table is None:
        proc_net = os_features.current().proc_net
        if proc_net is None:
            return None
        route_table = proc_net / "route"
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    best: tuple[int, str] | None = None
    for line in lines:
        fields = line.split()
        if len(fields) >= 7 and fields[1] == "00000000" and fields[7:8] and fields[7] == "00000000":
            metric = int(fields[6])
            if best is None or metric < best[0]:
                best = (metric, fields[0])
    return best[1] if best else None

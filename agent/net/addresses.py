"""Whether a host name or address stays on this machine: the one test behind "loopback by default; any other bind
needs a token" (API, relay, web) and behind telling an encoder's local relay from a real ingest."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1, bracketed or not); names other than
    localhost are not resolved, so they count as remote: the safe side for a bind that needs a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

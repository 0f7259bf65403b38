"""One probe of a target: DNS resolution time, TCP connect time, optional ICMP echo.

Each step has its own timeout and turns failures into a short reason ("refused", "timed out",
"name not found"); a probe never raises for a network failure. The connection is closed at once:
ingest servers see one SYN/FIN pair per interval, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeResult:
    dns_ms: float | None
    connect_ms: float | None
    error: str | None
    address: str | None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int, timeout_s: float) -> tuple[str, int, float | None]:
    """(address, family, dns_ms) of `host`; dns_ms is None for an IP literal. Raises OSError/TimeoutError."""
    if is_ip_literal(host):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return host, family, None
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s)
    dns_ms = (time.perf_counter() - started) * 1000
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    family, _, _, _, sockaddr = infos[0]
    return str(sockaddr[0]), int(family), dns_ms


async def tcp_connect_ms(address: str, family: int, port: int, timeout_s: float) -> float:
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        started = time.perf_counter()
        await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout_s)
        return (time.perf_counter() - started) * 1000
    finally:
        sock.close()


def describe_failure(exc: BaseException, step: str) -> str:
    if isinstance(exc, TimeoutError):
        return f"{step} timed out"
    if isinstance(exc, socket.gaierror):
        return f"name not found ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return f"{step} failed: {exc.strerror or exc}"
    return f"{step} failed: {type(exc).__name__}"


async def probe(host: str, port: int, timeout_s: float, *, connect: bool = True) -> ProbeResult:
    """Resolve `host` and (unless `connect` is False) time a TCP connect to it."""
    try:
        address, family, dns_ms = await resolve(host, port, timeout_s)
    except (OSError, TimeoutError) as exc:
        return ProbeResult(None, None, describe_failure(exc, "DNS lookup"), None)
    if not connect:
        return ProbeResult(dns_ms, None, None, address)
    try:
        connect_ms = await tcp_connect_ms(address, family, port, timeout_s)
    except (OSError, TimeoutError) as exc:
        return ProbeResult(dns_ms, None, describe_failure(exc, "TCP connect"), address)
    return ProbeResult(dns_ms, connect_ms, None, address)


class IcmpProber:
    """ICMP echo through unprivileged datagram sockets, where the OS allows them; otherwise off for good."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.reason: str | None = None if enabled else "turned off (sources.network.icmp)"

    async def rtt_ms(self, address: str, timeout_s: float) -> float | None:
        if not self.enabled:
            return None
        try:
            from icmplib import async_ping
            from icmplib.exceptions import ICMPLibError, SocketPermissionError
        except ImportError:
            self._disable("icmplib is not installed")
            return None
        try:
            host = await asyncio.wait_for(
                async_ping(address, count=1, timeout=timeout_s, privileged=False), timeout_s + 1
            )
        except SocketPermissionError:
            self._disable("unprivileged ICMP is not allowed here (net.ipv4.ping_group_range)")
            return None
        except (ICMPLibError, OSError, TimeoutError) as exc:
            log.debug("ICMP echo to %s failed: %s", address, exc)
            return None
        with contextlib.suppress(TypeError, ValueError):
            if host.is_alive:
                return float(host.avg_rtt)
        return None

    def _disable(self, reason: str) -> None:
        self.enabled = False
        self.reason = reason
        log.debug("ICMP probes off: %s", reason)

"""Finding the encoder's own TCP connection to its ingest, so the uplink source can read its tcp_info.

Three ways, first hit wins: a connection to OBS's stream server (from obs-websocket), or to the configured
`ingest.primary` (whatever process owns it: the ffmpeg of `streamhealth run`, the relay, another tool),
found through sock_diag filtered by the resolved address and port; else an encoder process (OBS, ffmpeg)
with a connection to the rtmp(s) URL on its command line or to a usual ingest port (psutil). Blocking
(DNS, /proc): the source calls it in a thread, every few seconds, only while nothing is found.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Literal

import psutil

from agent.net.sockdiag import SockDiagError, TcpDiagRecord
from agent.net.sockdiag_reader import SockDiagReader
from agent.process_names import ProcessNames, encoder_kind
from agent.redact import url_host_port

log = logging.getLogger(__name__)

FoundBy = Literal["obs", "ffmpeg", "ingest"]
INGEST_PORTS = frozenset({1935, 443})
DNS_CACHE_S = 60.0


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    found_by: FoundBy

    @property
    def name(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class IngestConnection:
    """One connection: the remote end to read by, the local port that tells it from the others."""

    remote_address: str
    remote_port: int
    local_port: int
    name: str  # host:port as configured, for people
    found_by: FoundBy
    pid: int | None = None
    process: str | None = None


def destination_from_url(url: str | None, found_by: FoundBy) -> Destination | None:
    if not url or "://" not in url:
        return None
    host, port = url_host_port(url)
    return Destination(host, port, found_by) if host else None


class ConnectionFinder:
    def __init__(self, reader: SockDiagReader, *, encoder_processes: bool = True) -> None:
        self.reader = reader
        self.encoder_processes = encoder_processes
        self._dns: dict[str, tuple[float, list[str]]] = {}
        self._process_names = ProcessNames()  # looked at every few seconds: kept, not re-read each time

    def needs_resolving(self, destinations: list[Destination]) -> bool:
        """Whether `find` would ask DNS (which may block) rather than use what it resolved lately."""
        now = time.monotonic()
        for destination in destinations:
            cached = self._dns.get(destination.host)
            if cached is None or now - cached[0] >= DNS_CACHE_S:
                return True
        return False

    def _addresses(self, host: str) -> list[str]:
        cached = self._dns.get(host)
        if cached is not None and time.monotonic() - cached[0] < DNS_CACHE_S:
            return cached[1]
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            log.debug("uplink: cannot resolve %s: %s", host, exc)
            return []
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        self._dns[host] = (time.monotonic(), addresses)
        return addresses

    def find(self, destinations: list[Destination], *, encoders_may_run: bool = True) -> IngestConnection | None:
        """The busiest established connection to the first destination that has one, else an encoder's."""
        for destination in destinations:
            for address in self._addresses(destination.host):
                try:
                    records = self.reader.read(address, destination.port)
                except SockDiagError as exc:
                    log.debug("uplink: %s", exc)
                    continue
                if records:
                    record = busiest(records)
                    pid, process = owner_of(record.local_port, record.remote_port, self._process_names)
                    return IngestConnection(
                        record.remote_address,
                        record.remote_port,
                        record.local_port,
                        destination.name,
                        destination.found_by,
                        pid,
                        process,
                    )
        if not self.encoder_processes or not encoders_may_run:
            return None
        for candidate in encoder_process_connections({d.port for d in destinations}, self._process_names):
            if self._readable(candidate):
                return candidate
        return None

    def _readable(self, candidate: IngestConnection) -> bool:
        """Seen by sock_diag here: a process in another network namespace (a container) is not."""
        try:
            records = self.reader.read(candidate.remote_address, candidate.remote_port)
        except SockDiagError:
            return False
        return any(record.local_port == candidate.local_port for record in records)


def busiest(records: list[TcpDiagRecord]) -> TcpDiagRecord:
    """The stream among other connections to the same ingest (a probe, a bandwidth test): most bytes sent."""
    return max(records, key=lambda record: (record.tcp_info.bytes_acked or 0) if record.tcp_info else 0)


def _encoder_kind(process_name: str) -> FoundBy | None:
    """OBS Studio and ffmpeg, named as the system source names them (agent/process_names.py)."""
    kind = encoder_kind(process_name)
    return "obs" if kind == "obs" else "ffmpeg" if kind == "ffmpeg" else None


def _encoder_processes(names: ProcessNames | None = None) -> list[tuple[psutil.Process, FoundBy]]:
    return (names or ProcessNames()).matching(_encoder_kind)


def owner_of(local_port: int, remote_port: int, names: ProcessNames | None = None) -> tuple[int | None, str | None]:
    """The encoder process holding the connection with this local port, if it is one we know."""
    for process, _kind in _encoder_processes(names):
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.laddr and conn.raddr and conn.laddr.port == local_port and conn.raddr.port == remote_port:
                    return process.pid, process.name()
        except (psutil.Error, OSError):
            continue
    return None, None


def _url_ports(process: psutil.Process) -> set[int]:
    ports: set[int] = set()
    try:
        arguments = process.cmdline()
    except (psutil.Error, OSError):
        return ports
    for argument in arguments:
        destination = destination_from_url(argument if argument.lower().startswith("rtmp") else None, "ffmpeg")
        if destination is not None:
            ports.add(destination.port)
    return ports


def encoder_process_connections(known_ports: set[int], names: ProcessNames | None = None) -> list[IngestConnection]:
    """OBS and ffmpeg processes' established connections to an ingest-looking port: first those to the
    port of an rtmp(s) URL on the process's command line, then a configured destination's port or 1935 / 443."""
    exact: list[IngestConnection] = []
    likely: list[IngestConnection] = []
    for process, kind in _encoder_processes(names):
        url_ports = _url_ports(process)
        try:
            connections = process.net_connections(kind="tcp")
            name = process.name()
        except (psutil.Error, OSError):
            continue
        for conn in connections:
            if conn.status != psutil.CONN_ESTABLISHED or not conn.raddr:
                continue
            port = conn.raddr.port
            if port not in url_ports and port not in known_ports | INGEST_PORTS:
                continue
            host = str(conn.raddr.ip)
            label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            found = IngestConnection(host, port, conn.laddr.port, label, kind, process.pid, name)
            (exact if port in url_ports else likely).append(found)
    return exact + likely

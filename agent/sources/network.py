"""The network stability source: RTT, jitter, loss and reachability of every ingest, plus link facts.

Each target (primary and backup ingests, extra targets) is probed by its own task on its own timer,
so one slow or dead target never delays the others: DNS time, TCP connect time, ICMP echo where
allowed. While a live connection to a target exists (the rtmp bandwidth test, later the relay), the
kernel's TCP_INFO for it replaces the probe connections. The sample is assembled on the source's
interval from what the probes recorded; link facts and other uploaders are read on a slower timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from agent.beat import after_peers, sleep_until_next_beat
from agent.errors import ConfigError
from agent.models import NetworkSample, TargetStability, TcpInfo, UploadUser
from agent.models.network import LinkInfo, TargetRole
from agent.net.link import UploadUsersScanner, link_info
from agent.net.live import LiveConnections, live_connections, target_name
from agent.net.probes import IcmpProber, probe
from agent.net.stability import TargetWindow
from agent.net.tcpinfo import read_tcp_info
from agent.redact import url_host_port
from agent.settings import IngestSettings, NetworkSourceSettings
from agent.sources.base import SampleSink, Source

log = logging.getLogger(__name__)

SHORT_WINDOW_S = 10.0
LONG_WINDOW_S = 60.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    role: TargetRole

    @property
    def name(self) -> str:
        return target_name(self.host, self.port)


def parse_target(text: str, role: TargetRole) -> Target:
    """A target from an rtmp(s):// URL (default ports 1935 / 443) or "host:port"; never keeps a key."""
    text = text.strip()
    if "://" in text:
        host, port = url_host_port(text)
    else:
        parts = urlsplit(f"//{text}")
        try:
            host, port = parts.hostname or "", parts.port or 0
        except ValueError:
            host, port = "", 0
    if not host or not port:
        raise ConfigError(f"sources.network.extra_targets: {text!r} is not host:port or an rtmp(s):// URL")
    return Target(host, port, role)


def targets_from(settings: NetworkSourceSettings, ingest: IngestSettings) -> list[Target]:
    found: list[Target] = []
    if ingest.primary:
        found.append(parse_target(ingest.primary, "primary"))
    found.extend(parse_target(url, "backup") for url in ingest.backups)
    found.extend(parse_target(text, "extra") for text in settings.extra_targets)
    unique: dict[str, Target] = {}
    for target in found:
        unique.setdefault(target.name, target)
    return list(unique.values())


@dataclass
class _TargetState:
    target: Target
    window: TargetWindow = field(default_factory=TargetWindow)
    dns_ms: float | None = None
    icmp_rtt_ms: float | None = None
    tcp_info: TcpInfo | None = None
    error: str | None = None
    rtt_from: Literal["tcp_connect", "tcp_info"] | None = None


class NetworkSource(Source):
    name = "network"

    def __init__(
        self,
        settings: NetworkSourceSettings,
        ingest: IngestSettings,
        *,
        timeout_s: float,
        live: LiveConnections = live_connections,
    ) -> None:
        super().__init__(interval_s=settings.interval_s, timeout_s=max(timeout_s, settings.timeout_s))
        self.settings = settings
        self.live = live
        self.states = [_TargetState(target) for target in targets_from(settings, ingest)]
        self.icmp = IcmpProber(settings.icmp)
        self.link = LinkInfo()
        self.upload_users: list[UploadUser] = []
        self.scanner = UploadUsersScanner()
        self.upload_users_note: str | None = (
            "turned off (sources.network.upload_users)" if not settings.upload_users else None
        )

    async def run(self, sink: SampleSink) -> None:
        tasks = [
            asyncio.create_task(self._probe_forever(state), name=f"probe:{state.target.name}") for state in self.states
        ]
        tasks.append(asyncio.create_task(self._scan_link_forever(), name="network:link"))
        try:
            while True:
                await sleep_until_next_beat(self.interval_s)
                await after_peers()  # the probes woken on this beat record first
                sink.publish(self.name, self.sample())
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _probe_forever(self, state: _TargetState) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.timeout_s * 3 + 1):
                    await self.probe_once(state)
            except TimeoutError:
                state.window.record(time.monotonic(), None)
                state.error = "probe timed out"
            except Exception:  # a bug must not end this target's probing; the others go on regardless
                log.exception("probing %s failed unexpectedly", state.target.name)
            await sleep_until_next_beat(self.interval_s)

    async def probe_once(self, state: _TargetState) -> None:
        target = state.target
        sock = self.live.socket_for(target.name)
        info = read_tcp_info(sock) if sock is not None else None
        state.tcp_info = info
        if info is not None:
            state.window.record(time.monotonic(), info.rtt_ms)
            state.error = None
            state.rtt_from = "tcp_info"
            return
        result = await probe(target.host, target.port, self.settings.timeout_s)
        state.window.record(time.monotonic(), result.connect_ms)
        state.dns_ms = result.dns_ms if result.dns_ms is not None else state.dns_ms
        state.error = result.error
        state.rtt_from = "tcp_connect" if result.connect_ms is not None else state.rtt_from
        if result.address is not None and self.icmp.enabled:
            state.icmp_rtt_ms = await self.icmp.rtt_ms(result.address, self.settings.timeout_s)

    async def _scan_link_forever(self) -> None:
        # Listing the upload users runs `ss` over every socket (about 15 ms of CPU): less often than
        # the cheap link facts, which are a few reads in /sys.
        last_users_scan = -float("inf")
        while True:
            try:
                self.link = await asyncio.to_thread(link_info)
                now = time.monotonic()
                if self.settings.upload_users and now - last_users_scan >= self.settings.upload_users_interval_s:
                    last_users_scan = now
                    self.upload_users_note = self.scanner.unavailable_reason()
                    self.upload_users = await self.scanner.scan()
            except OSError as exc:
                log.debug("link scan failed: %s", exc)
            await sleep_until_next_beat(self.settings.link_scan_interval_s)

    def target_stability(self, state: _TargetState, now: float) -> TargetStability:
        short = state.window.window(now, SHORT_WINDOW_S)
        long = state.window.window(now, LONG_WINDOW_S)
        last = state.window.last
        return TargetStability(
            name=state.target.name,
            role=state.target.role,
            reachable=None if last is None else last.rtt_ms is not None,
            dns_ms=_round(state.dns_ms),
            rtt_p50_ms_10s=_round(short.rtt_p50_ms),
            rtt_p95_ms_10s=_round(short.rtt_p95_ms),
            rtt_max_ms_10s=_round(short.rtt_max_ms),
            rtt_p50_ms_60s=_round(long.rtt_p50_ms),
            rtt_p95_ms_60s=_round(long.rtt_p95_ms),
            rtt_max_ms_60s=_round(long.rtt_max_ms),
            jitter_ms=_round(state.window.jitter_ms),
            loss_ratio_10s=short.loss_ratio,
            loss_ratio_60s=long.loss_ratio,
            icmp_rtt_ms=_round(state.icmp_rtt_ms),
            tcp_info=state.tcp_info,
            error=state.error,
            last_rtt_ms=_round(last.rtt_ms) if last is not None else None,
            rtt_from=state.rtt_from,
            probes_10s=short.probes,
        )

    def sample(self) -> NetworkSample:
        now = time.monotonic()
        targets = [self.target_stability(state, now) for state in self.states]
        primary = next((target for target in targets if target.role == "primary"), None)
        return NetworkSample(
            targets=targets,
            ingest_reachable=primary.reachable if primary else None,
            ingest_rtt_ms=primary.rtt_p50_ms_10s if primary else None,
            ingest_rtt_p95_ms=primary.rtt_p95_ms_10s if primary else None,
            ingest_jitter_ms=primary.jitter_ms if primary else None,
            ingest_loss_ratio=primary.loss_ratio_10s if primary else None,
            tcp_retransmits_total=primary.tcp_info.retransmits_total if primary and primary.tcp_info else None,
            link=self.link,
            on_wifi=self.link.kind == "wifi",
            upload_users=self.upload_users,
            upload_users_note=self.upload_users_note,
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

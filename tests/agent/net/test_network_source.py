"""The network stability source against real sockets: a fault-injecting proxy on loopback, refused
ports, names that do not resolve. Probing intervals are shortened so each phase takes a second or two."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from agent.models import NetworkSample, Sample, TargetStability
from agent.net.live import LiveConnections
from agent.settings import IngestSettings, NetworkSourceSettings
from agent.sources.network import NetworkSource, parse_target, targets_from
from tests.peers.fault_proxy import FaultProxy, fault_proxy
from tests.peers.wait import async_wait_until, free_port

pytestmark = pytest.mark.integration


class Sink:
    def __init__(self) -> None:
        self.samples: list[NetworkSample] = []
        self.failures: list[str] = []

    def publish(self, source: str, sample: Sample) -> None:
        assert isinstance(sample, NetworkSample)
        self.samples.append(sample)

    def report_failure(self, source: str, message: str) -> None:
        self.failures.append(message)

    def target(self, name: str) -> TargetStability:
        return next(target for target in self.samples[-1].targets if target.name == name)


def _source(*targets: str, timeout_s: float = 2.5, live: LiveConnections | None = None) -> NetworkSource:
    settings = NetworkSourceSettings(
        interval_s=0.25, timeout_s=timeout_s, extra_targets=list(targets), icmp=False, upload_users=False
    )
    return NetworkSource(settings, IngestSettings(), timeout_s=timeout_s, live=live or LiveConnections())


@contextlib.asynccontextmanager
async def _running(source: NetworkSource, sink: Sink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
def proxy() -> AsyncIterator[FaultProxy]:
    with fault_proxy() as running:
        yield running  # type: ignore[misc]


async def _probes_after(sink: Sink, name: str, count: int, timeout_s: float = 15) -> None:
    await async_wait_until(
        lambda: sink.samples and sink.target(name).probes_10s >= count, timeout_s, f"{count} probes of {name}"
    )


async def test_rtt_jitter_and_loss_follow_injected_delay_stall_and_refusal(proxy: FaultProxy) -> None:
    source, sink = _source(proxy.address), Sink()
    name = proxy.address
    async with _running(source, sink):
        await _probes_after(sink, name, 6)
        healthy = sink.target(name)
        assert healthy.reachable is True
        assert healthy.loss_ratio_10s == 0
        assert healthy.rtt_p95_ms_10s is not None and healthy.rtt_p95_ms_10s < 100
        assert healthy.rtt_from == "tcp_connect"

        proxy.set_mode("delay", delay_s=1.0)
        await async_wait_until(
            lambda: (sink.target(name).rtt_max_ms_10s or 0) > 900, 15, "a delayed connect to show in the RTT"
        )
        baseline_jitter_ms = healthy.jitter_ms or 0
        await async_wait_until(
            lambda: (sink.target(name).jitter_ms or 0) > 4 * baseline_jitter_ms + 20,
            15,
            "jitter to rise with the delays",
        )
        delayed = sink.target(name)
        assert delayed.rtt_p95_ms_10s is not None and delayed.rtt_p95_ms_10s > 900
        assert delayed.loss_ratio_10s == 0  # slow, not lost: the timeout (2.5 s) outlasts a retransmitted SYN

        proxy.set_mode("refuse")
        await async_wait_until(lambda: sink.target(name).reachable is False, 10, "refusals to show")
        await async_wait_until(lambda: (sink.target(name).loss_ratio_10s or 0) >= 0.2, 10, "loss to rise")
        refused = sink.target(name)
        assert refused.error == "connection refused"

        proxy.set_mode("pass")
        await async_wait_until(lambda: sink.target(name).reachable is True, 10, "recovery")
        assert sink.target(name).error is None


async def test_stalled_target_times_out_and_counts_as_lost(proxy: FaultProxy) -> None:
    proxy.set_mode("stall")
    source, sink = _source(proxy.address, timeout_s=0.4), Sink()
    async with _running(source, sink):
        await _probes_after(sink, proxy.address, 3)
        stalled = sink.target(proxy.address)
        assert stalled.reachable is False
        assert stalled.loss_ratio_10s == 1.0
        assert stalled.error == "TCP connect timed out"
        assert stalled.rtt_p50_ms_10s is None


async def test_one_stalled_target_does_not_slow_the_others(proxy: FaultProxy) -> None:
    with fault_proxy() as healthy_proxy:
        proxy.set_mode("stall")
        source, sink = _source(proxy.address, healthy_proxy.address, timeout_s=2.0), Sink()
        async with _running(source, sink):
            await _probes_after(sink, healthy_proxy.address, 8)
            # In the same time the stalled target finished at most one 2 s probe; the healthy one kept its pace.
            assert sink.target(proxy.address).probes_10s <= 2
            assert sink.target(healthy_proxy.address).loss_ratio_10s == 0


async def test_dns_failure_and_refused_port_are_reported_with_reasons() -> None:
    refused = f"127.0.0.1:{free_port()}"
    source, sink = _source("streamhealth-test.invalid:1935", refused, timeout_s=2.0), Sink()
    async with _running(source, sink):
        await _probes_after(sink, refused, 2)
        await _probes_after(sink, "streamhealth-test.invalid:1935", 1)
        unknown = sink.target("streamhealth-test.invalid:1935")
        assert unknown.reachable is False
        assert unknown.error is not None and unknown.error.startswith("name not found")
        assert sink.target(refused).error == "connection refused"
        assert sink.target(refused).loss_ratio_10s == 1.0
    assert sink.failures == []  # failures of targets are measurements, not failures of the source


async def test_live_connection_is_read_through_tcp_info_instead_of_probing() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    peer, _ = listener.accept()
    client.sendall(b"x" * 10000)
    peer.recv(65536)
    live = LiveConnections()
    name = f"127.0.0.1:{port}"
    listener.close()  # probes would now be refused: only TCP_INFO can make the target reachable
    try:
        with live.registered(name, client):
            source, sink = _source(name, live=live), Sink()
            async with _running(source, sink):
                await _probes_after(sink, name, 2)
                target = sink.target(name)
                assert target.rtt_from == "tcp_info"
                assert target.reachable is True
                assert target.tcp_info is not None and target.tcp_info.bytes_acked >= 10000
    finally:
        client.close()
        peer.close()


def test_targets_come_from_ingests_and_extras_as_host_port_without_keys() -> None:
    ingest = IngestSettings(
        primary="rtmps://a.rtmps.youtube.com/live2/secret-key-1234",
        backups=["rtmp://b.example.net/app/another-key-5678", "rtmp://c.example.net:1936/app/k3y-abcdef"],
    )
    settings = NetworkSourceSettings(extra_targets=["8.8.8.8:53", "rtmp://b.example.net/app/x", "[::1]:443"])
    targets = targets_from(settings, ingest)
    assert [(t.name, t.role) for t in targets] == [
        ("a.rtmps.youtube.com:443", "primary"),
        ("b.example.net:1935", "backup"),
        ("c.example.net:1936", "backup"),
        ("8.8.8.8:53", "extra"),
        ("[::1]:443", "extra"),
    ]
    with pytest.raises(Exception, match="not host:port"):
        parse_target("no-port-here", "extra")

"""While the rtmp test publishes, the network source reads the kernel's view of that connection."""

from __future__ import annotations

import asyncio

import pytest

from agent.bandwidth import run_bandwidth_test
from agent.models import NetworkSample, Sample
from agent.settings import IngestSettings, NetworkSourceSettings, load_settings
from agent.sources.network import NetworkSource
from tests.peers.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.integration


class Reporter:
    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        pass


class Sink:
    def __init__(self) -> None:
        self.samples: list[NetworkSample] = []

    def publish(self, source: str, sample: Sample) -> None:
        assert isinstance(sample, NetworkSample)
        self.samples.append(sample)

    def report_failure(self, source: str, message: str) -> None:
        pass


async def test_network_source_uses_tcp_info_of_the_rtmp_test_connection(nginx_ingest: NginxRtmp) -> None:
    url = nginx_ingest.url("livetcpinfo1")
    source = NetworkSource(
        NetworkSourceSettings(interval_s=0.25, icmp=False, upload_users=False),
        IngestSettings(primary=url),
        timeout_s=2,
    )
    sink = Sink()
    task = asyncio.create_task(source.run(sink))
    try:
        settings = load_settings(environ={"STREAMHEALTH_BANDWIDTH__RTMP_MAX_KBPS": "4000"})
        result = await run_bandwidth_test(settings, backend="rtmp", reporter=Reporter(), url=url, duration_s=2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert result.ok, result.error
    during = [sample.targets[0] for sample in sink.samples if sample.targets[0].rtt_from == "tcp_info"]
    assert during, "no sample read TCP_INFO while the test published"
    assert any(target.tcp_info is not None and target.tcp_info.bytes_acked > 100_000 for target in during)
    assert sink.samples[-1].ingest_reachable is True

"""Ground truth: each backend measures a path shaped with `tc tbf rate R` to within ±15% of R.

The servers (bandwidth-server for http and speedtest, nginx-rtmp for rtmp) run inside a network
namespace joined to this one by a veth pair whose host end is shaped; nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agent.bandwidth import run_bandwidth_test
from agent.settings import Settings, load_settings
from tests.peers.bandwidth_server import BandwidthServer, bandwidth_server
from tests.peers.netns import NetnsHost, can_use_netns, namespace_host
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available

pytestmark = [pytest.mark.integration, pytest.mark.root]

RATES_MBIT = (2, 5, 20)
TOLERANCE = 0.15
DURATION_S = 4.0


class Reporter:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float | None, str]] = []

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        self.steps.append((step, fraction, message))


@dataclass
class ShapedPeers:
    host: NetnsHost
    server: BandwidthServer
    ingest: NginxRtmp


@pytest.fixture(scope="module")
def shaped_peers() -> Iterator[ShapedPeers]:
    usable, reason = can_use_netns()
    if not usable:
        pytest.skip(reason)
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    with namespace_host() as host:
        netns = host.exec_args()
        with (
            bandwidth_server(host.address, netns_exec=netns) as server,
            nginx_rtmp(host=host.address, netns_exec=netns) as ingest,
        ):
            yield ShapedPeers(host, server, ingest)


def _settings() -> Settings:
    return load_settings(
        environ={
            "STREAMHEALTH_BANDWIDTH__HTTP_DOWNLOAD": "false",
            "STREAMHEALTH_BANDWIDTH__SPEEDTEST_DOWNLOAD": "false",
        }
    )


@pytest.mark.parametrize("rate_mbit", RATES_MBIT)
@pytest.mark.parametrize("backend", ["http", "speedtest", "rtmp"])
async def test_backend_measures_shaped_upload_within_15_percent(
    shaped_peers: ShapedPeers, backend: str, rate_mbit: int
) -> None:
    # Delete, then add: `tc qdisc replace` on a tbf only changes it and keeps its queue, and GSO packets
    # queued under a faster rate's larger burst never fit the slower rate's bucket (the link wedges).
    shaped_peers.host.unshape()
    shaped_peers.host.shape_upload(rate_mbit * 1000)
    url = {
        "http": shaped_peers.server.url,
        "speedtest": shaped_peers.server.url + "/",
        "rtmp": shaped_peers.ingest.url(f"shapedtest{rate_mbit}"),
    }[backend]
    reporter = Reporter()

    result = await run_bandwidth_test(_settings(), backend=backend, reporter=reporter, url=url, duration_s=DURATION_S)

    assert result.ok, result.error
    assert result.upload_bps is not None
    expected = rate_mbit * 1e6
    assert abs(result.upload_bps - expected) <= TOLERANCE * expected, (
        f"{backend} measured {result.upload_bps / 1e6:.2f} Mbit/s on a {rate_mbit} Mbit/s link; "
        f"windows {[round(w / 1e6, 2) for w in result.samples_bps]}"
    )
    assert result.upload_bps <= (result.upload_peak_bps or 0) + 1
    assert result.recommended_video_kbps == int(result.upload_bps * 0.7 / 1000 - 160)
    assert any(step == "upload" for step, _, _ in reporter.steps)

"""The test peers themselves work: nginx-rtmp listens, a namespace host is reachable and shaped."""

from __future__ import annotations

import pytest

from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp
from tests.peers.wait import port_open

pytestmark = pytest.mark.integration


def test_nginx_rtmp_listens_on_its_port(nginx_ingest: NginxRtmp) -> None:
    assert port_open(nginx_ingest.host, nginx_ingest.port)
    assert nginx_ingest.url("abc").endswith(f":{nginx_ingest.port}/live/abc")


@pytest.mark.root
def test_nginx_rtmp_runs_inside_a_namespace_reachable_from_the_host(netns_host: NetnsHost) -> None:
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as server:
        assert port_open(server.host, server.port)
        netns_host.cut()
        assert not port_open(server.host, server.port)
        netns_host.restore()

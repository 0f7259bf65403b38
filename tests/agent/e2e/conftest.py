"""Fixtures of the end-to-end tests: an nginx-rtmp ingest inside the test's network namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available


@pytest.fixture
def ingest_in_namespace(netns_host: NetnsHost) -> Iterator[NginxRtmp]:
    """nginx-rtmp listening on the namespace's address: the path to it can be shaped or cut."""
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as server:
        yield server

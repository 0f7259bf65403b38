"""The http and speedtest backends against a real `streamhealth bandwidth-server` on loopback:
every figure of the result is filled, and Speedtest Mini mode never needs speedtest.net."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agent.bandwidth import run_bandwidth_test
from agent.settings import load_settings
from tests.peers.bandwidth_server import BandwidthServer, bandwidth_server

pytestmark = pytest.mark.integration


class Reporter:
    def __init__(self) -> None:
        self.fractions: list[float] = []

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        if fraction is not None:
            self.fractions.append(fraction)


@pytest.fixture(scope="module")
def server() -> Iterator[BandwidthServer]:
    with bandwidth_server() as running:
        yield running


def test_server_speaks_librespeed_and_speedtest_mini(server: BandwidthServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert len(client.get("/backend/garbage.php", params={"ckSize": "1"}).content) == 1024 * 1024
        assert client.post("/backend/empty.php", content=b"x" * 5000).status_code == 200
        assert client.get("/backend/getIP.php").text == "127.0.0.1"
        assert 'upload_extension: "php"' in client.get("/").text
        assert client.get("/speedtest/latency.txt").text == "test=test"
        assert len(client.get("/speedtest/random350x350.jpg").content) == 350 * 350 * 2
        assert client.post("/speedtest/upload.php", content=b"y" * 12345).text == "size=12345"
        assert client.get("/speedtest/nothing.txt").status_code == 404


async def test_http_backend_reports_upload_download_and_latency_under_load(server: BandwidthServer) -> None:
    reporter = Reporter()
    result = await run_bandwidth_test(
        load_settings(environ={}), backend="http", reporter=reporter, url=server.url, duration_s=3
    )
    assert result.ok, result.error
    assert result.upload_bps and result.upload_bps > 0
    assert result.download_bps and result.download_bps > 0
    assert result.latency_ms is not None and result.latency_under_load_ms is not None
    assert len(result.samples_bps) == 3
    assert result.bytes_sent > 0
    assert reporter.fractions == sorted(reporter.fractions) and reporter.fractions[-1] == 1.0


async def test_speedtest_mini_mode_works_without_speedtest_net(
    server: BandwidthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def no_speedtest_net(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and "speedtest.net" in host:
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "speedtest.net is unreachable in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_speedtest_net)
    result = await run_bandwidth_test(
        load_settings(environ={}), backend="speedtest", reporter=Reporter(), url=server.url + "/", duration_s=3
    )
    assert result.ok, result.error
    assert asked == []
    assert result.target == f"127.0.0.1:{server.port}"
    assert result.upload_bps and result.upload_bps > 0
    assert result.download_bps and result.download_bps > 0
    assert result.latency_ms is not None

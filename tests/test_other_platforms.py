"""The agent on Windows and macOS, as they see it: TCP_INFO, /proc/net, /sys/class/net and `ss` switched
off at the one seam (agent/os_features.py), guarded so that nothing goes around it. The agent with its
default sources, its API and /metrics, a preflight and the TUI all still work, and the missing parts
say "not available on this platform"."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agent.models import HealthSnapshot
from agent.net.link import UploadUsersScanner, link_info, wifi_signal_dbm
from agent.net.route import default_route_interface
from agent.net.tcpinfo import read_tcp_info
from agent.os_features import NOT_AVAILABLE
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.peers.wait import async_wait_until
from tests.platform_neutral import OtherPlatform, as_on
from tui.app import build_app
from tui.client import AgentClient
from tui.widgets.metric_tile import MetricTile

PLATFORMS = ["win32", "darwin"]


@pytest.fixture(params=PLATFORMS)
def other_platform(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[OtherPlatform]:
    with as_on(request.param, monkeypatch) as other:
        yield other
    assert other.violations == [], f"Linux-only readers used around the seam: {other.violations}"


@pytest.fixture
async def ingest_listener() -> AsyncIterator[int]:
    """A loopback TCP port standing in for the ingest: the network source's connect probes reach it."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def test_linux_only_readers_answer_nothing_and_say_why(other_platform: OtherPlatform) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname()) as sock:
        assert read_tcp_info(sock) is None
    assert default_route_interface() is None
    assert wifi_signal_dbm("wlan0") is None
    link = link_info()
    assert link.kind == "unknown" and link.note is not None and NOT_AVAILABLE in link.note
    reason = UploadUsersScanner().unavailable_reason()
    assert reason is not None and NOT_AVAILABLE in reason
    assert set(other_platform.features.unavailable()) == {
        "tcp_info",
        "default_route",
        "link_kind",
        "upload_users",
        "uplink",
    }
    assert asyncio.run(UploadUsersScanner().scan()) == []


@pytest.mark.integration
async def test_agent_api_preflight_and_tui_work_with_the_linux_only_parts_unavailable(
    other_platform: OtherPlatform, ingest_listener: int, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        INGEST__PRIMARY=f"rtmp://127.0.0.1:{ingest_listener}/app/other-platform-key",
        SAMPLING__INTERVAL_S="0.25",
        SOURCES__NETWORK__INTERVAL_S="0.25",
        SOURCES__NETWORK__ICMP="false",
        SOURCES__OBS__URL="ws://127.0.0.1:9",  # nothing listens there: OBS is "not connected", as when closed
    )
    server = AgentServer(settings)  # every default source: system, network, obs, ffmpeg
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

            async def measured() -> HealthSnapshot | None:
                snapshot = HealthSnapshot.model_validate_json((await http.get("/api/v1/health")).text)
                network = snapshot.network
                ready = snapshot.system is not None and network is not None and network.ingest_rtt_ms is not None
                return snapshot if ready and snapshot.overall != "starting" else None

            snapshot = await async_wait_until(measured, 20, "system and network samples with an ingest RTT")
            assert isinstance(snapshot, HealthSnapshot) and snapshot.system and snapshot.network
            assert snapshot.agent.os == other_platform.features.platform
            unavailable = snapshot.agent.unavailable_features
            assert set(unavailable) == {"tcp_info", "default_route", "link_kind", "upload_users", "uplink"}
            assert all(NOT_AVAILABLE in reason for reason in unavailable.values())
            assert snapshot.system.cpu_count_logical >= 1 and snapshot.system.memory_total_bytes > 0
            primary = next(target for target in snapshot.network.targets if target.role == "primary")
            assert primary.rtt_from == "tcp_connect" and primary.tcp_info is None
            assert snapshot.network.link.note is not None and NOT_AVAILABLE in snapshot.network.link.note
            assert snapshot.network.upload_users_note and NOT_AVAILABLE in snapshot.network.upload_users_note
            states = {name: status.state for name, status in snapshot.sources.items()}
            # OBS "ok": it reports that OBS is not connected; ffmpeg waits for an ffmpeg to push progress.
            assert states["system"] == states["network"] == states["obs"] == "ok", states
            assert snapshot.obs is not None and snapshot.obs.connection != "connected"
            assert (await http.get("/metrics")).status_code == 200

            started = await http.post("/api/v1/preflight", json={"duration_s": 1.0, "bandwidth": False})
            assert started.status_code == 202
            finished = await server.agent.jobs.wait("preflight")
            assert finished is not None and finished.ok, finished
            report = (await http.get("/api/v1/preflight")).json()
            checks = {check["name"]: check for check in report["checks"]}
            assert report["verdict"] in ("GO", "GO_WITH_WARNINGS", "NO_GO")
            assert checks["link"]["status"] == "skipped" and NOT_AVAILABLE in checks["link"]["message"]
            assert checks["ingest primary"]["status"] in ("pass", "warn"), checks  # connect probes, no TCP_INFO

        client = AgentClient(server.url, backoff_first_s=0.1, backoff_max_s=0.5)
        app = build_app(client, agent_label="other platform", refresh_interval_s=0.25)
        async with app.run_test(size=(110, 32)):

            def tile(key: str) -> str:
                return app.screen.query_one(f"#tile-{key}", MetricTile).render().plain

            await async_wait_until(lambda: "cores" in tile("cpu"), 20, "the CPU tile")
            await async_wait_until(lambda: "n/a on this OS" in tile("ingest"), 20, "the ingest tile's link row")
            assert "ms" in tile("ingest")  # the RTT, from connect probes
    finally:
        await server.stop("test")

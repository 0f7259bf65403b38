"""The uplink source on this machine: finds a connection to ingest.primary over loopback and reads it at 4 Hz."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.models import EncoderSettings, Sample, UplinkSample
from agent.net.encoder_connection import encoder_process_connections
from agent.runtime import Agent
from agent.settings import IngestSettings, UplinkSourceSettings
from agent.sources.uplink import UplinkSource
from tests.agent.helpers import make_settings
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.wait import async_wait_until
from tests.platform_neutral import as_on

# A loopback address of its own (all of 127/8 is loopback on Linux): a connection left open by an earlier
# test to a port this test's server happens to reuse cannot be mistaken for the one under test.
HOST = f"127.{os.getpid() % 200 + 20}.{random.randrange(1, 250)}.{random.randrange(1, 250)}"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


class Collect:
    def __init__(self) -> None:
        self.samples: list[UplinkSample] = []
        self.failures: list[str] = []

    def publish(self, source: str, sample: Sample) -> None:
        assert isinstance(sample, UplinkSample)
        self.samples.append(sample)

    def report_failure(self, source: str, message: str) -> None:
        self.failures.append(message)


@contextlib.asynccontextmanager
async def ingest_server() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(accept, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1], writers
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def running(source: UplinkSource, sink: Collect) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@linux_only
async def test_finds_the_connection_to_ingest_primary_and_reads_it_at_four_hertz() -> None:
    async with ingest_server() as (port, _):
        source = UplinkSource(
            UplinkSourceSettings(discover_interval_s=0.2, find_encoder_processes=False),
            IngestSettings(primary=f"rtmp://{HOST}:{port}/live/secret-key"),
        )
        sink = Collect()
        async with running(source, sink):
            await asyncio.sleep(0.3)
            assert sink.samples and sink.samples[-1].state == "searching"
            assert "secret-key" not in (sink.samples[-1].note or "")
            client = socket.create_connection((HOST, port))
            local_port = client.getsockname()[1]
            try:
                client.sendall(b"\x03" * 200_000)
                await async_wait_until(lambda: len([s for s in sink.samples if s.state == "ok"]) >= 6, 5, "readings")
            finally:
                client.close()
            ok = [s for s in sink.samples if s.state == "ok"]
            seconds = (ok[-1].taken_at - ok[0].taken_at).total_seconds()
            assert 0.15 <= seconds / (len(ok) - 1) <= 0.6  # about 4 Hz (a loaded machine stretches it)
            last = ok[-1]
            assert last.connection == f"{HOST}:{port}" and last.found_by == "ingest"
            assert last.local_port == local_port
            assert last.rtt_ms is not None and last.min_rtt_ms is not None and last.min_rtt_ms <= last.rtt_ms
            assert last.acked_bps is not None and last.unsent_bytes == 0
            assert not last.congested
            await async_wait_until(lambda: sink.samples[-1].state == "searching", 5, "the end of the connection")
        assert sink.failures == []


@linux_only
async def test_an_encoder_starting_to_send_makes_it_look_at_once_not_at_the_next_search() -> None:
    """With a minute between searches, the connection is found within a moment of `search_now` (ffmpeg's
    first progress, OBS streaming): its queue is known from the stream's first seconds."""
    async with ingest_server() as (port, _):
        source = UplinkSource(
            UplinkSourceSettings(discover_interval_s=60, find_encoder_processes=False),
            IngestSettings(primary=f"rtmp://{HOST}:{port}/live/key"),
        )
        sink = Collect()
        async with running(source, sink):
            await async_wait_until(lambda: sink.samples, 5, "the first search")
            client = socket.create_connection((HOST, port))
            try:
                client.sendall(b"\x03" * 10_000)
                source.search_now()
                await async_wait_until(lambda: sink.samples[-1].state == "ok", 5, "the connection found")
            finally:
                client.close()


@linux_only
async def test_prefers_the_server_obs_streams_to() -> None:
    async with ingest_server() as (port, _), ingest_server() as (other_port, _):
        source = UplinkSource(
            UplinkSourceSettings(discover_interval_s=0.2, find_encoder_processes=False),
            IngestSettings(primary=f"rtmp://{HOST}:{other_port}/live/x"),
            obs_settings=lambda: EncoderSettings(server=f"rtmp://{HOST}:{port}/live"),
        )
        assert [d.found_by for d in source.destinations()] == ["obs", "ingest"]
        sink = Collect()
        with socket.create_connection((HOST, port)):
            async with running(source, sink):
                await async_wait_until(lambda: any(s.state == "ok" for s in sink.samples), 5, "a reading")
        assert next(s for s in sink.samples if s.state == "ok").found_by == "obs"


async def test_elsewhere_it_says_not_available_and_the_agent_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, SOURCES__NETWORK__ENABLED="false", SOURCES__OBS__ENABLED="false")
    other = as_on("darwin", monkeypatch)  # the seam in agent/os_features.py, as macOS sees it
    other.__enter__()
    agent = Agent(settings)
    await agent.start()
    try:
        await async_wait_until(lambda: agent.snapshot.uplink is not None, 5, "the uplink sample")
        uplink = agent.snapshot.uplink
        assert uplink is not None and uplink.state == "unavailable"
        assert "not available on this platform" in (uplink.note or "")
        assert agent.snapshot.sources["uplink"].state == "ok"
        assert agent.snapshot.system is not None or agent.snapshot.sources["system"].state != "error"
    finally:
        await agent.stop()
        other.__exit__(None, None, None)


@linux_only
@pytest.mark.integration
async def test_finds_an_ffmpeg_publishing_to_an_ingest_nobody_configured(nginx_ingest: NginxRtmp) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (apt install ffmpeg)")
    publisher = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15", "-c:v", "libx264", "-preset", "ultrafast",
        "-b:v", "300k", "-f", "flv", nginx_ingest.url("unconfigured-key"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Other encoders may run on this machine (other tests): ours must be among the candidates.
        def ours() -> list[tuple[str, str, str | None]]:
            found = [c for c in encoder_process_connections(set()) if c.pid == publisher.pid]
            return [(c.name, c.found_by, c.process) for c in found]

        await async_wait_until(lambda: asyncio.to_thread(ours), 20, "our ffmpeg's connection")
        assert await asyncio.to_thread(ours) == [(f"127.0.0.1:{nginx_ingest.port}", "ffmpeg", "ffmpeg")]
        # While the system source says no encoder runs, the search does not look at processes' sockets ...
        source = UplinkSource(
            UplinkSourceSettings(discover_interval_s=0.2), IngestSettings(), encoder_running=lambda: False
        )
        sink = Collect()
        async with running(source, sink):
            await asyncio.sleep(1.0)
            assert all(s.state == "searching" for s in sink.samples)
            source.search_now()  # ... until an encoder is known to send (ffmpeg's progress, OBS streaming)
            await async_wait_until(lambda: any(s.state == "ok" for s in sink.samples), 20, "an ffmpeg's connection")
        found = next(s for s in sink.samples if s.state == "ok")
        assert (found.found_by, found.process) == ("ffmpeg", "ffmpeg")
    finally:
        publisher.terminate()
        await publisher.wait()


def test_obs_streaming_to_a_local_relay_reads_the_relays_ingest_connection_only() -> None:
    source = UplinkSource(
        UplinkSourceSettings(find_encoder_processes=False),
        IngestSettings(primary="rtmp://10.77.0.2:1935/live/x"),
        obs_settings=lambda: EncoderSettings(server="rtmp://127.0.0.1:1936/live"),
    )
    assert [d.found_by for d in source.destinations()] == ["ingest"]  # OBS's loopback one is not on the uplink

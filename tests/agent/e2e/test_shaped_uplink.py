"""End to end on a real shaped link: ffmpeg publishes 2500 kbit/s to nginx-rtmp in a network namespace
whose path is shaped with tc tbf to 1.2 Mbit/s. ffmpeg posts its -progress to the agent's HTTP endpoint;
the agent must raise a warning within 3 s and suggest a bitrate the link can carry."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.models import Alert, Suggestion
from agent.server import AgentServer
from agent.settings import load_settings
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]

LINK_KBIT = 1200
VIDEO_KBPS, AUDIO_KBPS = 2500, 128
FALLING_BEHIND_RULES = {"output_bitrate_low", "upload_headroom", "ffmpeg_slow"}


@pytest.fixture
def ingest_in_namespace(netns_host: NetnsHost) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (apt install ffmpeg)")
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as server:
        yield server


def ffmpeg_publisher(progress_url: str, ingest_url: str) -> list[str]:
    """A live source at a strict 2500 kbit/s CBR (x264 filler), small frames so the CPU is no excuse."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
        "-b:v", f"{VIDEO_KBPS}k", "-minrate", f"{VIDEO_KBPS}k", "-maxrate", f"{VIDEO_KBPS}k",
        "-bufsize", f"{VIDEO_KBPS}k", "-x264-params", "nal-hrd=cbr:force-cfr=1",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k",
        "-progress", progress_url, "-stats_period", "0.5",
        "-f", "flv", ingest_url,
    ]  # fmt: skip


def _bitrate_suggestion(alerts: list[Alert]) -> Suggestion | None:
    for alert in alerts:
        for suggestion in alert.suggestions:
            if alert.id in FALLING_BEHIND_RULES and suggestion.text.startswith("Lower the video bitrate to "):
                return suggestion
    return None


def _suggested_kbps(suggestion: Suggestion) -> int:
    return int(suggestion.text.removeprefix("Lower the video bitrate to ").split()[0])


def _quoted_kbps(suggestion: Suggestion) -> float:
    return float(suggestion.text.split("only ")[1].split(" Mbit/s")[0]) * 1000  # quoted as x.xx Mbit/s


def _falling_behind(alerts: list[Alert]) -> Alert | None:
    return next((alert for alert in alerts if alert.id in FALLING_BEHIND_RULES), None)


async def test_shaped_uplink_raises_a_warning_within_3_s_with_a_bitrate_the_link_carries(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, tmp_path: Path
) -> None:
    netns_host.shape_upload(LINK_KBIT)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[api]
port = 0
[logs]
enabled = false
[sources.system]
enabled = false
[sources.network]
enabled = false
[sources.obs]
enabled = false
[sources.ffmpeg]
enabled = true
http_endpoint = true
[stream]
video_bitrate_kbps = {VIDEO_KBPS}
audio_bitrate_kbps = {AUDIO_KBPS}
"""
    )
    server = AgentServer(load_settings(config, environ={}))
    await server.start()
    publisher: asyncio.subprocess.Process | None = None
    try:
        agent = server.agent
        publisher = await asyncio.create_subprocess_exec(
            *ffmpeg_publisher(f"{server.url}/api/v1/ffmpeg/progress", ingest_in_namespace.url("e2e-key")),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        await async_wait_until(
            lambda: agent.snapshot.ffmpeg is not None or publisher.returncode is not None, 20, "ffmpeg's first progress"
        )
        if publisher.returncode is not None:
            stderr = await publisher.stderr.read() if publisher.stderr else b""
            pytest.fail(f"ffmpeg exited with {publisher.returncode}: {stderr.decode(errors='replace')}")
        first_progress = time.monotonic()
        alert = await async_wait_until(lambda: _falling_behind(agent.active_alerts()), 10, "a falling-behind alert")
        elapsed = time.monotonic() - first_progress
        assert isinstance(alert, Alert)
        assert elapsed <= 3.0, f"the first warning took {elapsed:.1f} s: {alert.message}"
        # The suggestion is at or below what the link carries (audio included) from the first warning on. It
        # waits for 1.5 s of backlogged intervals that agree (agent/net/steady.py): 1.7-5.8 s after a cut with
        # a real OBS (docs/rules.md); a CI run with a stray OBS rendering beside it took over 3 s here.
        first = await async_wait_until(lambda: _bitrate_suggestion(agent.active_alerts()), 8, "a bitrate suggestion")
        assert isinstance(first, Suggestion)
        assert _suggested_kbps(first) + AUDIO_KBPS <= LINK_KBIT, first.text
        # The throughput it quotes is what gets out: once the socket buffer has filled, the link's rate.
        settled = await async_wait_until(
            lambda: (
                (s := _bitrate_suggestion(agent.active_alerts())) is not None
                and abs(_quoted_kbps(s) - LINK_KBIT) <= 0.10 * LINK_KBIT
                and s
            ),
            8,
            "the quoted throughput to settle at the link's rate",
        )
        assert isinstance(settled, Suggestion)
        # The headroom it states is kept: video + audio at most what gets through / the factor (1.5 for a
        # throughput average; 1.25 when the kernel's view of the encoder's connection measured the link).
        factor = float(settled.why.split("at most 1/")[1].split()[0])
        assert 1.2 <= factor <= 1.5, settled.why
        assert _suggested_kbps(settled) + AUDIO_KBPS <= (_quoted_kbps(settled) + 5) / factor, settled.text
    finally:
        if publisher is not None and publisher.returncode is None:
            publisher.terminate()
            try:
                await asyncio.wait_for(publisher.wait(), 10)
            except TimeoutError:
                publisher.kill()
                await publisher.wait()
        await server.stop()

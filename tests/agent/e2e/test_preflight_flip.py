"""End to end: `streamhealth preflight` against the project's bandwidth server and an nginx-rtmp ingest
in a network namespace. With the path shaped well above Twitch's 720p30 bitrate the verdict is GO;
shaped below it, NO_GO, because of the bandwidth check (exit codes 0 and 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.bandwidth_server import bandwidth_server
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]

NEEDED_KBPS = 3000 + 160  # Twitch 1280x720@30: the preset's recommended video bitrate + its audio


@dataclass
class Peers:
    host: NetnsHost
    ingest: NginxRtmp
    bandwidth_url: str


@pytest.fixture
def peers(netns_host: NetnsHost) -> Iterator[Peers]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    with (
        bandwidth_server(host=netns_host.address, netns_exec=netns_host.exec_args()) as server,
        nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as ingest,
    ):
        yield Peers(netns_host, ingest, server.url)


def preflight(peers: Peers, tmp_path: Path) -> tuple[int, dict[str, object]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
platform = "twitch"
[logs]
dir = "{tmp_path / "logs"}"
[ingest]
primary = "{peers.ingest.url("preflight-key-123456")}"
[sources.system]
enabled = false
[sources.obs]
enabled = false
[sources.ffmpeg]
enabled = false
[sources.network]
interval_s = 1.0
[bandwidth]
backend = "http"
http_url = "{peers.bandwidth_url}"
http_download = false
duration_s = 4.0
ramp_up_s = 1.0
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(config), "preflight", "--json", "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "preflight-key-123456" not in result.stdout + result.stderr  # the key never shows
    return result.returncode, json.loads(result.stdout)


def _nothing_queued_to(address: str) -> bool:
    """No TCP connection from here to the namespace has bytes waiting to be sent (`ss` Send-Q)."""
    listing = subprocess.run(["ss", "-Htn", "dst", address], capture_output=True, text=True, check=True).stdout
    return all(int(line.split()[2]) == 0 for line in listing.splitlines() if line.strip())


def checks_of(report: dict[str, object]) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in report["checks"]}  # type: ignore[index, union-attr]


def test_preflight_flips_from_go_to_no_go_when_the_link_drops_below_the_presets_bitrate(
    peers: Peers, tmp_path: Path
) -> None:
    peers.host.shape_upload(20_000, latency_ms=50)
    code, report = preflight(peers, tmp_path / "fast")
    checks = checks_of(report)
    assert checks["bandwidth"]["status"] == "pass", checks["bandwidth"]
    assert report["verdict"] == "GO", [c for c in checks.values() if c["status"] not in ("pass", "skipped")]
    assert code == 0
    assert checks["ingest primary"]["status"] == "pass"

    # The first test's closed connections may still be sending what they had queued: let them finish
    # at the fast rate, or at the slow one they would keep the link full for the second preflight.
    wait_until(lambda: _nothing_queued_to(peers.host.address), 60, "the first test's connections to drain")
    peers.host.shape_upload(2_000)
    code, report = preflight(peers, tmp_path / "slow")
    checks = checks_of(report)
    assert checks["bandwidth"]["status"] == "fail", checks["bandwidth"]
    assert report["verdict"] == "NO_GO" and code == 2
    upload_bps = report["bandwidth"]["upload_bps"]  # type: ignore[index]
    assert upload_bps < NEEDED_KBPS * 1000 <= 20_000_000
    # The recommendation fits what was measured (video + audio within upload / 1.5), down to the
    # playbook's floor of 300 kbps of video.
    recommended = report["recommended"]  # type: ignore[index]
    fits_kbps = upload_bps / 1000 / 1.5 - recommended["audio_bitrate_kbps"]
    assert recommended["video_bitrate_kbps"] <= max(300, fits_kbps)

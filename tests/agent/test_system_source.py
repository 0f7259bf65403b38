"""The system source on this real machine: plausible readings, the busiest processes, the encoder."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.net.route import default_route_interface
from agent.settings import SystemSourceSettings
from agent.sources.system import SystemSource, encoder_kind


def skip_if_an_encoder_already_runs() -> None:
    """These tests start the machine's only encoder; another one (a developer's OBS, a benchmark's ffmpeg)
    would rightly be found instead, so the test could not tell what it means to."""
    import psutil

    running = [p.info["name"] for p in psutil.process_iter(["name"]) if encoder_kind(p.info["name"] or "")]
    if running:
        pytest.skip(f"an encoder already runs on this machine ({', '.join(sorted(set(running)))})")


def make_source(tmp_path: Path, **overrides: object) -> SystemSource:
    settings = SystemSourceSettings(recordings_dir=tmp_path, process_scan_interval_s=0.2, **overrides)  # type: ignore[arg-type]
    return SystemSource(settings, interval_s=1.0, timeout_s=5.0)


async def test_readings_are_plausible(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    await source.sample()
    await asyncio.sleep(0.2)
    sample = await source.sample()
    assert 0.0 <= sample.cpu_usage_ratio <= 1.0
    assert sample.cpu_count_logical == len(sample.cpu_per_core_ratio) >= 1
    assert 0 < sample.memory_available_bytes <= sample.memory_total_bytes
    assert sample.disk is not None and sample.disk.path == str(tmp_path) and sample.disk.free_bytes > 0
    assert all(interface.name != "lo" for interface in sample.interfaces)
    assert all(interface.sent_bps >= 0 for interface in sample.interfaces)


@pytest.fixture
def busy_process() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield process
    process.kill()
    process.wait()


async def test_the_busiest_processes_are_ranked_by_cpu(tmp_path: Path, busy_process: subprocess.Popen[bytes]) -> None:
    source = make_source(tmp_path, top_processes_count=10)
    await source.sample()
    await asyncio.sleep(1.0)
    source._last_scan_at = -float("inf")
    sample = await source.sample()
    pids = [usage.pid for usage in sample.top_processes]
    assert busy_process.pid in pids
    busy = next(usage for usage in sample.top_processes if usage.pid == busy_process.pid)
    assert busy.cpu_core_ratio > 0.3
    ratios = [usage.cpu_core_ratio for usage in sample.top_processes]
    assert ratios == sorted(ratios, reverse=True)


@pytest.mark.integration
async def test_a_running_ffmpeg_is_found_as_the_encoder(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (apt install ffmpeg)")
    skip_if_an_encoder_already_runs()
    ffmpeg = subprocess.Popen(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "null",
            "-",
        ],
    )
    try:
        source = make_source(tmp_path)
        await source.sample()
        await asyncio.sleep(0.5)
        sample = await source.sample()
        assert sample.encoder_process is not None
        assert sample.encoder_process.kind == "ffmpeg" and sample.encoder_process.pid == ffmpeg.pid
        assert sample.encoder_memory_rss_bytes and sample.encoder_memory_rss_bytes > 1_000_000
    finally:
        ffmpeg.kill()
        ffmpeg.wait()
    sample = await source.sample()
    assert sample.encoder_process is None  # gone: said so, and looked for again on the next scan


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("obs", "obs"),
        ("obs64.exe", "obs"),
        ("ffmpeg", "ffmpeg"),
        ("Streamlabs OBS.exe", "streamlabs"),
        ("TikTok LIVE Studio.exe", "tiktok_live_studio"),
        ("bash", None),
        ("obsidian", None),
    ],
)
def test_encoder_names(name: str, kind: str | None) -> None:
    assert encoder_kind(name) == kind


def test_default_route_is_read_from_the_route_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
    )
    assert default_route_interface(table) == "eth0"
    assert default_route_interface(tmp_path / "missing") is None


@pytest.mark.integration
async def test_an_encoder_started_later_is_found_without_a_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (apt install ffmpeg)")
    skip_if_an_encoder_already_runs()
    # A busy machine (this test suite on 2 cores) would rank processes with full scans every interval.
    monkeypatch.setattr("agent.sources.system.BUSY_CPU_RATIO", 2.0)
    source = make_source(tmp_path)  # full scans every 0.2 s x IDLE_SCAN_FACTOR, new-process looks every 0.2 s
    first = await source.sample()
    assert first.encoder_process is None or first.encoder_process.kind != "ffmpeg"
    full_scan_at = source._last_scan_at
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "nullsrc", "-f", "null", "-"],
    )
    try:
        await asyncio.sleep(0.3)
        sample = await source.sample()
        assert source._last_scan_at == full_scan_at  # found by the cheap look, not a full scan
        assert sample.encoder_process is not None and sample.encoder_process.pid == ffmpeg.pid
    finally:
        ffmpeg.kill()
        ffmpeg.wait()

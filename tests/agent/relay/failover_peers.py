"""Shared pieces of the failover tests: a relay with backups, ffmpeg publishing with -progress watched, and
waiting for the first picture a recording nginx wrote."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from agent.relay.relay import Relay
from agent.relay.settings import RelaySettings
from agent.rtmp import flv
from tests.agent.relay.test_relay_nginx import ffmpeg_test_pattern


@contextlib.asynccontextmanager
async def relay_with_backups(urls: list[str], **settings: object) -> AsyncIterator[Relay]:
    relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0", "hold_s": 0, **settings}), urls)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


@dataclass
class WatchedFfmpeg:
    """An ffmpeg publisher whose -progress reports are timed as they come (a stall shows as a long gap)."""

    process: asyncio.subprocess.Process
    progress_at_s: list[float] = field(default_factory=list)
    stderr: bytes = b""

    @property
    def longest_progress_gap_s(self) -> float:
        times = self.progress_at_s
        return max((later - earlier for earlier, later in itertools.pairwise(times)), default=0.0)


@contextlib.asynccontextmanager
async def ffmpeg_publishing(url: str, seconds: float, bitrate: str = "1500k") -> AsyncIterator[WatchedFfmpeg]:
    command = ffmpeg_test_pattern(url, seconds, bitrate=bitrate)
    command[command.index("-f") : command.index("-f")] = ["-progress", "pipe:1", "-stats_period", "0.25"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    watched = WatchedFfmpeg(process)

    async def read_progress() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            if line.startswith(b"progress="):
                watched.progress_at_s.append(time.monotonic())

    async def read_stderr() -> None:
        assert process.stderr is not None
        watched.stderr = await process.stderr.read()

    readers = [asyncio.create_task(read_progress()), asyncio.create_task(read_stderr())]
    try:
        yield watched
    finally:
        if process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), seconds + 30)
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.gather(*readers, return_exceptions=True)


def first_picture_seen(path: Path) -> bool:
    if not path.exists():
        return False
    with contextlib.suppress(ValueError, IndexError):
        return any(
            t.tag_type == flv.TAG_VIDEO and flv.video_info(t.data).picture for t in flv.read_flv(path.read_bytes())
        )
    return False


async def wait_for_first_picture(path: Path, timeout_s: float) -> float:
    """Seconds until nginx recorded a picture at `path`; fails after `timeout_s`."""
    started = time.monotonic()
    while not await asyncio.to_thread(first_picture_seen, path):
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"no picture recorded at {path.name} within {timeout_s:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def decode_errors(path: Path) -> str:
    """What `ffmpeg -v error -i FILE -f null -` prints: nothing for a stream that decodes from its first frame."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return result.stderr + ("" if result.returncode == 0 else f"(exit {result.returncode})")

"""One congestion run end to end, for the tests and bench/relay_drops.py: a real encoder (ffmpeg's libx264 at its
defaults, or OBS Studio with its default x264 settings) publishes 2500 kbit/s through the relay, or straight
to the ingest, to nginx-rtmp in a network namespace; the path to it is cut with tc tbf to fractions of the
stream's rate for a while each; then what nginx recorded is judged: `ffmpeg -v error` over it, the longest
gap between two video packets, and what the relay dropped and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.obs.client import ObsClient
from agent.relay.queue import DropReason
from agent.relay.relay import Relay
from tests.agent.relay.helpers import running_relay, until
from tests.agent.relay.test_relay_hold import video_packets
from tests.agent.relay.test_relay_nginx import recorded_file
from tests.peers import obs_studio as obs_peer
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp

VIDEO_KBPS = 2500
AUDIO_KBPS = 160
STREAM_KBPS = VIDEO_KBPS + AUDIO_KBPS

Encoder = Literal["ffmpeg", "obs"]
Path_ = Literal["relay", "direct"]


@dataclass
class DropRun:
    encoder: Encoder
    path: Path_
    cuts: list[tuple[float, float]]
    decode_errors: list[str] = field(default_factory=list)
    longest_gap_s: float = 0.0
    long_gaps: list[tuple[float, float]] = field(default_factory=list)  # (at s into the recording, gap s) over 1 s
    recorded_s: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)
    encoder_dropped: int | None = None  # OBS's own count (outputSkippedFrames) on the direct path

    def line(self) -> str:
        cuts = " then ".join(f"{ratio:.2f}x for {seconds:g} s" for ratio, seconds in self.cuts)
        drops = ", ".join(f"{reason} {count}" for reason, count in self.dropped.items() if count) or "none"
        own = "" if self.encoder_dropped is None else f", {self.encoder} dropped {self.encoder_dropped}"
        return (
            f"{self.encoder:6} {self.path:6} cut {cuts}: {len(self.decode_errors)} error lines, longest video gap "
            f"{self.longest_gap_s:.2f} s over {self.recorded_s:.0f} s recorded (over 1 s: {self.long_gaps}); "
            f"relay drops: {drops}{own}"
        )


def ffmpeg_x264_defaults(url: str, seconds: float) -> list[str]:
    """libx264 as ffmpeg sets it up by default (3 B-frames, b-pyramid, 3 references), 2500 kbit/s, keyframes
    every 2 s (what platforms ask; x264's own default is 250 frames)."""
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-b:v", f"{VIDEO_KBPS}k", "-maxrate", f"{VIDEO_KBPS}k",
        "-bufsize", f"{VIDEO_KBPS}k", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-f", "flv", url,
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def _maybe_relay(ingest_url: str, path: Path_) -> AsyncIterator[tuple[str, Relay | None]]:
    if path == "direct":
        yield ingest_url, None
        return
    async with running_relay(ingest_url) as relay:
        yield f"rtmp://127.0.0.1:{relay.port}/live/anything", relay


async def run_cuts(
    netns_host: NetnsHost,
    ingest: NginxRtmp,
    encoder: Encoder,
    cuts: list[tuple[float, float]],
    *,
    path: Path_ = "relay",
    healthy_s: float = 5.0,
    key: str = "drops",
) -> DropRun:
    """Publish, let `healthy_s` pass, then for each (ratio, seconds) shape the uplink to `ratio` of the stream's
    rate for that long and give it `healthy_s` back; stop the encoder and judge the recording."""
    run = DropRun(encoder, path, cuts)
    total_s = healthy_s + sum(seconds + healthy_s for _, seconds in cuts)
    async with _maybe_relay(ingest.url(key), path) as (url, relay):
        if encoder == "ffmpeg":
            process = await asyncio.create_subprocess_exec(
                *ffmpeg_x264_defaults(url, total_s + 2), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await _cut_schedule(netns_host, relay, cuts, healthy_s)
                await asyncio.wait_for(process.wait(), 60)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        else:
            server, _, stream_key = url.rpartition("/")
            with obs_peer.obs_studio(
                server, stream_key, video_kbps=VIDEO_KBPS, audio_kbps=AUDIO_KBPS, start_streaming=True
            ) as obs:
                client = await obs_peer.connect(obs)
                try:
                    await _wait_streaming(client)
                    await _cut_schedule(netns_host, relay, cuts, healthy_s)
                    status = await client.request("GetStreamStatus")
                    if path == "direct":
                        run.encoder_dropped = int(status.get("outputSkippedFrames", 0))
                    await client.request("StopStream")
                    await asyncio.sleep(3)
                finally:
                    await client.close()
        if relay is not None:
            await until(lambda: relay.destinations[0].state == "idle", 30, "the relay to end the stream")
            dropped = relay.destinations[0].queue.dropped
            run.dropped = {str(reason): dropped[reason] for reason in DropReason}
    netns_host.unshape()
    recorded = recorded_file(ingest, key)
    await until(recorded.exists, 10, "nginx's recording")
    _judge(run, recorded)
    return run


async def _wait_streaming(client: ObsClient) -> None:
    for _ in range(300):
        if int((await client.request("GetStreamStatus")).get("outputBytes", 0)) > 100_000:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("OBS did not start streaming")


async def _cut_schedule(
    netns_host: NetnsHost, relay: Relay | None, cuts: list[tuple[float, float]], healthy_s: float
) -> None:
    if relay is not None:
        await until(lambda: relay.ingress.video_pictures_total > 30, 30, "the encoder's first second")
    await asyncio.sleep(healthy_s)
    for ratio, seconds in cuts:
        netns_host.shape_upload(round(STREAM_KBPS * ratio))
        await asyncio.sleep(seconds)
        netns_host.unshape()
        await asyncio.sleep(healthy_s)


def _judge(run: DropRun, recorded: Path) -> None:
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(recorded), "-f", "null", "-"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    run.decode_errors = decode.stderr.splitlines() + ([] if decode.returncode == 0 else [f"exit {decode.returncode}"])
    dts = [d for d, _ in video_packets(recorded)]
    run.longest_gap_s = max((later - earlier for earlier, later in itertools.pairwise(dts)), default=0.0)
    run.long_gaps = [(round(a - dts[0], 2), round(b - a, 2)) for a, b in itertools.pairwise(dts) if b - a > 1.0]
    run.recorded_s = dts[-1] - dts[0] if dts else 0.0

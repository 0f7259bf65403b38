"""Disconnect protection end to end: ffmpeg (libx264 at its defaults: B-frames, b-pyramid) publishes to the
relay, is killed with -9 mid-stream, and the ingest keeps one session with the slate until it is back."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.relay.relay import Relay
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from tests.agent.relay.helpers import running_relay, until
from tests.agent.relay.test_frames import ex_video
from tests.agent.relay.test_relay_nginx import recorded_file, recording_ingest
from tests.agent.rtmp.mini_ingest import mini_ingest
from tests.peers.nginx_rtmp import NginxRtmp

__all__ = ["recording_ingest"]  # the fixture, used here by name

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]


def ffmpeg_x264_defaults(url: str, seconds: float) -> list[str]:
    """libx264 as ffmpeg sets it up by default (3 B-frames, b-pyramid), keyframes every 2 s, AAC 48 kHz."""
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-b:v", "1000k", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-f", "flv", url,
    ]  # fmt: skip


def slate_ready(relay: Relay) -> bool:
    slates = relay.protection.slates
    return slates is not None and slates.loaded > 0


async def start_ffmpeg(command: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


def video_packets(path: Path) -> list[tuple[float, float]]:
    """(dts, pts) in seconds of every video packet, as ffprobe reads the file."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time,pts_time",
         "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [(float(p["dts_time"]), float(p["pts_time"])) for p in json.loads(probe.stdout)["packets"]]


async def test_ffmpeg_killed_mid_stream_is_held_with_the_slate_and_its_return_continues_one_nginx_session(
    recording_ingest: NginxRtmp,
) -> None:
    async with running_relay(recording_ingest.url("held"), hold_s=120) as relay:
        url = f"rtmp://127.0.0.1:{relay.port}/live/whatever"
        first = await start_ffmpeg(ffmpeg_x264_defaults(url, 60))
        try:
            await until(lambda: relay.ingress.video_pictures_total >= 150, 30, "5 s of the first encoder")
            await until(lambda: slate_ready(relay), 20, "the slate made")
            killed_at = time.monotonic()
            first.kill()
            await until(lambda: relay.holding, 5, "the relay to hold")
            held_after_s = time.monotonic() - killed_at
        finally:
            await stop(first)
        await asyncio.sleep(15)
        assert relay.holding and relay.destinations[0].connects_total == 1
        second = await start_ffmpeg(ffmpeg_x264_defaults(url, 5))
        try:
            await until(lambda: not relay.holding, 15, "the second encoder on the air")
            assert await asyncio.wait_for(second.wait(), 30) == 0
        finally:
            await stop(second)
        await until(lambda: relay.destinations[0].state == "idle", 15, "the relay to end the stream")
    assert held_after_s < 1.0
    assert 14 < relay.protection.held_total_s() < 20
    assert relay.destinations[0].connects_total == 1  # one session at the ingest, across the crash
    recorded = recorded_file(recording_ingest, "held")
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(recorded), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr
    packets = video_packets(recorded)
    dts = [d for d, _ in packets]
    gaps = [later - earlier for earlier, later in itertools.pairwise(dts)]
    assert min(gaps) >= 0, "timestamps went back"
    assert max(gaps) <= 1.5, f"a video gap of {max(gaps):.2f} s"
    # One session: the file (rewritten by nginx at each publish) holds the first encoder, the slate, the second.
    assert dts[-1] - dts[0] > 5 + 15 + 4
    assert recording_ingest.error_log.count("publish: name='held'") == 1, recording_ingest.error_log[-2000:]


async def test_a_clean_stop_ends_the_broadcast_at_once_even_with_disconnect_protection() -> None:
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", hold_s=120) as relay:
        process = await start_ffmpeg(ffmpeg_x264_defaults(f"rtmp://127.0.0.1:{relay.port}/live/x", 2))
        try:
            assert await asyncio.wait_for(process.wait(), 30) == 0  # ffmpeg unpublishes (deleteStream)
        finally:
            await stop(process)
        await until(lambda: ingest.closed_sessions == 1, 10, "the relay to unpublish at the ingest")
        assert not relay.holding and relay.protection.held_total_s() == 0
        assert relay.protection.frames_sent_total == 0


async def test_a_lost_encoder_is_held_for_hold_s_then_the_stream_ends_with_timestamps_that_never_go_back() -> None:
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", hold_s=3) as relay:
        process = await start_ffmpeg(ffmpeg_x264_defaults(f"rtmp://127.0.0.1:{relay.port}/live/x", 60))
        try:
            await until(lambda: relay.ingress.video_pictures_total >= 60, 30, "2 s of video")
            await until(lambda: slate_ready(relay), 20, "the slate made")
            process.kill()
            await until(lambda: relay.holding, 5, "the relay to hold")
        finally:
            await stop(process)
        assert ingest.closed_sessions == 0
        await until(lambda: ingest.closed_sessions == 1, 10, "the hold to end the stream")
        assert not relay.holding
    assert 2.9 < relay.protection.held_total_s() < 5
    assert relay.protection.frames_sent_total >= 80  # 3 s of 30 fps video and 48 kHz audio
    media = [(type(e), e.timestamp) for e in ingest.events if isinstance(e, m.VideoMessage | m.AudioMessage)]
    for kind in (m.VideoMessage, m.AudioMessage):
        stamps = [ts for k, ts in media if k is kind]
        assert stamps == sorted(stamps), f"{kind.__name__} timestamps went back"
    video = [ts for k, ts in media if k is m.VideoMessage]
    assert max(b - a for a, b in itertools.pairwise(video)) < 500


async def test_closing_the_relay_under_a_live_stream_starts_no_hold_that_outlives_it() -> None:
    """The agent stopping closes the encoder's connection itself: that is no encoder lost mid-stream (a hold
    begun there ran on after the relay closed and ended a stream 120 s later, in a later run's log)."""
    async with mini_ingest() as ingest:
        async with running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", hold_s=120) as relay:
            process = await start_ffmpeg(ffmpeg_x264_defaults(f"rtmp://127.0.0.1:{relay.port}/live/x", 60))
            try:
                await until(lambda: relay.ingress.video_pictures_total >= 30, 30, "1 s of video")
                await until(lambda: slate_ready(relay), 20, "the slate made")
            except BaseException:
                await stop(process)
                raise
        try:
            await asyncio.sleep(1.0)  # a hold would have begun by now (it starts within a second of a loss)
            assert not relay.holding and relay.protection.hold is None
            assert relay.protection.frames_sent_total == 0
            assert not [t for t in asyncio.all_tasks() if t.get_name() == "relay-hold" and not t.done()]
        finally:
            await stop(process)


async def test_without_a_slate_for_the_stream_a_lost_encoder_ends_it_and_the_relay_says_why() -> None:
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", hold_s=120) as relay:
        encoder = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/anything")
        await encoder.start()
        await encoder.send_video(0, ex_video(1, 0, b"av01", b"\x81\x08\x0c\x00"))  # AV1: no slate for it
        await encoder.send_video(0, ex_video(1, 1, b"av01", b"\x12\x00" + b"\x00" * 500))
        await until(lambda: relay.protection.note() is not None, 5, "the relay to judge the stream's shape")
        encoder.abort()
        await encoder.close()
        await until(lambda: ingest.closed_sessions == 1, 10, "the relay to end the stream")
        assert not relay.holding
    note = relay.protection.note()
    assert note is not None and "av1" in note and "ends the stream" in note


def test_the_relay_says_at_start_up_when_disconnect_protection_is_off() -> None:
    from agent.relay.settings import RelaySettings

    relay = Relay(RelaySettings.model_validate({"listen": "127.0.0.1:0", "hold_s": 0}), ["rtmp://127.0.0.1/live/k"])
    assert relay.protection.start_note is not None and "relay.hold_s = 0" in relay.protection.start_note
    assert relay.protection.slates is None

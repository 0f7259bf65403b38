"""The relay's fast lane (agent/relay/fast_lane.py) changes how much CPU a frame costs, and nothing else: the
same bytes reach the ingest and the relay counts the same frames, kinds, bytes and latencies as the general
path, whether frames come one per read (as encoders send them) or many at once and cut anywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from tests.agent.relay.helpers import running_relay, until
from tests.agent.rtmp.conftest import parse_direction, read_recording
from tests.agent.rtmp.mini_ingest import mini_ingest

UNBOUNDED = {"disposable_drop_ms": 60_000, "inter_drop_ms": 60_000, "max_queue_ms": 60_000}


def _media(events: list[m.Event]) -> list[tuple[str, int, bytes]]:
    return [
        (type(event).__name__, event.timestamp, event.payload)
        for event in events
        if isinstance(event, m.AudioMessage | m.VideoMessage)
    ]


async def _relay_the_recording(fixtures_dir: Path, recording: str, fast_lane: bool) -> dict[str, Any]:
    """The recording's media, published frame by frame (each frame one write, as encoders do)."""
    events = parse_direction([read_recording(fixtures_dir, recording, "c2s")], "c2s")
    sent = _media(events)
    async with (
        mini_ingest() as ingest,
        running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/key", fast_lane=fast_lane, **UNBOUNDED) as relay,
    ):
        publisher = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/anything", chunk_size=4096)
        await publisher.start()
        await until(lambda: all(d.can_send_now() for d in relay.destinations), 10, "the relay to forward")
        lane = relay.lane
        for kind, timestamp, payload in sent:
            if kind == "VideoMessage":
                await publisher.send_video(timestamp, payload)
            else:
                await publisher.send_audio(timestamp, payload)
            await asyncio.sleep(0.001)  # one frame per read, mostly
        await until(lambda: len(_media(ingest.events)) >= len(sent), 20, "every frame at the ingest")
        relay.settle()
        ingress, destination = relay.ingress, relay.destinations[0]
        figures = {
            "at the ingest": _media(ingest.events),
            "frames by kind": dict(ingress.frames_total),
            "bytes in": ingress.bytes_total,
            "pictures": ingress.video_pictures_total,
            "keyframe interval": ingress.keyframe_interval_s,
            "codecs": (ingress.video_codec, ingress.audio_codec),
            "last timestamps": (ingress.last_video_ts_ms, ingress.last_audio_ts_ms),
            "frames out": destination.frames_out_total,
            "bytes out": destination.bytes_out_total,
            "latency samples": len(destination.latencies_s),
            "through the lane": 0 if lane is None else lane.frames_settled_total,
        }
        await publisher.close()
    assert figures["at the ingest"] == sent
    return figures


async def test_the_fast_lane_forwards_and_counts_exactly_what_the_general_path_does(
    fixtures_dir: Path, recording: str
) -> None:
    general = await _relay_the_recording(fixtures_dir, recording, fast_lane=False)
    fast = await _relay_the_recording(fixtures_dir, recording, fast_lane=True)
    assert general["through the lane"] == 0
    # Not vacuous: most frames took the lane (sequence headers and metadata never do).
    assert fast["through the lane"] > 0.8 * len(fast["at the ingest"])
    assert {k: v for k, v in fast.items() if k != "through the lane"} == {
        k: v for k, v in general.items() if k != "through the lane"
    }

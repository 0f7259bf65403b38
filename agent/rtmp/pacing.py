"""Sending a synthetic stream in real time through a publisher (the rtmp bandwidth test's load).

The pacing lives here, not in the publisher: the publisher sends what it is given as fast as the link
takes it; this decides when each frame is due.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from agent.rtmp.synthetic import MediaFrame, SyntheticStream


class FrameSink(Protocol):
    """What the pacing needs of a publisher (agent.rtmp.client.RtmpPublisher is one)."""

    async def send_metadata(self, metadata: dict[str, Any]) -> None: ...

    async def send_frame(self, frame: MediaFrame) -> None: ...


async def publish_synthetic(
    publisher: FrameSink,
    stream: SyntheticStream,
    duration_s: float,
    *,
    send_headers: bool = True,
) -> None:
    """Send `stream` in real time for `duration_s` (metadata and sequence headers first, unless already sent).

    Frames go out when their timestamp is due; when the link is slower than the stream, `drain` blocks, the
    stream falls behind and is not caught up later: the call still returns after `duration_s`, which is what
    a bandwidth test needs. Call again to continue the same stream (e.g. after `stream.set_video_bitrate`)
    with `send_headers=False`.
    """
    if send_headers:
        await publisher.send_metadata(stream.metadata())
        for frame in stream.sequence_headers():
            await publisher.send_frame(frame)
    loop = asyncio.get_running_loop()
    first = stream.next_frame()
    # Anchor the clock so the stream's timeline continues from where it is.
    origin = loop.time() - first.timestamp_ms / 1000
    end = loop.time() + duration_s
    frame = first
    while True:
        due = origin + frame.timestamp_ms / 1000
        if due >= end or loop.time() >= end:  # the second when the link is slower than the stream
            stream.push_back(frame)
            return
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await publisher.send_frame(frame)
        frame = stream.next_frame()

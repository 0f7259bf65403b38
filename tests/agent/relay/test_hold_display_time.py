"""The slate is shown after every picture the encoder sent. With B-frames a picture is shown after pictures
sent later (in the recorded OBS session, a P-frame 166 ms after its timestamp): a slate started three frame
times after the last timestamp could land in the frame time of a picture already sent, and ffmpeg, re-timing
the ingest's recording to the frame rate, refused it ("non monotonically increasing dts"). Found by the real
OBS killed with -9 (test_relay_hold_obs.py), in 3 of 8 runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.relay.frames import composition_offset_of
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from tests.agent.relay.helpers import running_relay, until
from tests.agent.relay.test_relay_hold import slate_ready
from tests.agent.rtmp.conftest import parse_direction, read_recording
from tests.agent.rtmp.mini_ingest import mini_ingest

Media = tuple[type[m.Event], int, bytes]


def _media(events: list[m.Event]) -> list[Media]:
    return [(type(e), e.timestamp, e.payload) for e in events if isinstance(e, m.AudioMessage | m.VideoMessage)]


def _is_picture(kind: type[m.Event], payload: bytes) -> bool:
    return kind is m.VideoMessage and len(payload) > 1 and payload[1] == 1


def _cut_after_a_late_picture(media: list[Media], frame_ms: float) -> int:
    """How many messages to send: up to a picture (past the first second) that is shown more than three
    frame times after the last timestamp sent, as when an encoder dies between a P-frame and its B-frames."""
    latest_display_ms, last_ms = 0, 0
    for index, (kind, timestamp, payload) in enumerate(media):
        last_ms = max(last_ms, timestamp)
        if _is_picture(kind, payload):
            latest_display_ms = max(latest_display_ms, timestamp + composition_offset_of(payload))
            if timestamp > 1000 and latest_display_ms - last_ms > 3 * frame_ms:
                return index + 1
    raise AssertionError("the recording has no picture shown that late")


async def test_a_lost_obs_stream_is_followed_by_a_slate_shown_after_its_last_picture(fixtures_dir: Path) -> None:
    media = _media(parse_direction([read_recording(fixtures_dir, "obs-29.0.2", "c2s")], "c2s"))
    sent = media[: _cut_after_a_late_picture(media, 1000 / 30)]
    latest_display_ms = max(ts + composition_offset_of(p) for kind, ts, p in sent if _is_picture(kind, p))
    async with mini_ingest() as ingest, running_relay(f"rtmp://127.0.0.1:{ingest.port}/live/k", hold_s=5) as relay:
        publisher = RtmpPublisher(f"rtmp://127.0.0.1:{relay.port}/live/obs", chunk_size=4096)
        await publisher.start()
        try:
            await until(lambda: all(d.can_send_now() for d in relay.destinations), 10, "the relay to forward")
            for kind, timestamp, payload in sent:
                send = publisher.send_video if kind is m.VideoMessage else publisher.send_audio
                await send(timestamp, payload)
                await asyncio.sleep(0.001)
            await until(lambda: slate_ready(relay), 20, "the slate made")
            await until(lambda: len(_media(ingest.events)) >= len(sent), 10, "every frame at the ingest")
        finally:
            publisher.abort()  # a reset, as when the encoder is killed: no unpublish
        await until(lambda: relay.holding, 5, "the relay to hold")
        hold = relay.protection.hold
        assert hold is not None
        video = hold.player.slate.shape.video
        frame_ms = 1000 * video.fps_den / video.fps_num
        await until(lambda: any(_is_picture(k, p) for k, _, p in _media(ingest.events)[len(sent) :]), 5, "the slate")
        after = _media(ingest.events)[len(sent) :]
    assert _media(ingest.events)[: len(sent)] == sent
    kind, first_ms, payload = next(item for item in after if _is_picture(item[0], item[2]))
    first_display_ms = first_ms + composition_offset_of(payload)
    assert first_display_ms >= latest_display_ms + round(frame_ms)  # its own frame time, after the last picture
    assert first_ms > max(ts for _, ts, _ in sent)  # and its timestamps continue the stream's

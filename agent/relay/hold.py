"""Holding a broadcast while its encoder is gone: the slate paced in real time, then the switch back.

`SlatePlayer` says which slate frames are due at a given time, with timestamps that continue the stream
the ingest has seen; `SwitchBack` holds a returning encoder's frames until its first keyframe, when the
ingest gets its sequence headers and that keyframe, restamped to continue where the slate stops. Both are
sans-I/O; `Hold` is the thin asyncio task that runs the player until the encoder is back or `hold_s` has
passed. Whether to hold at all, and ending the stream, are the relay's decisions (relay.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from agent.errors import ProtocolError
from agent.relay.frames import Frame, FrameKind, HeaderCache
from agent.relay.hevc_shape import nal_units_at, parse_hevc_decoder_configuration, sequence_header_record
from agent.relay.slate import Slate
from agent.rtmp import messages as m
from agent.rtmp.flv import parse_avc_decoder_configuration

log = logging.getLogger(__name__)

TIMESTAMP_MASK: Final = 0xFFFFFFFF
AAC_FRAME_SAMPLES: Final = 1024
SWITCH_GRACE_S: Final = 10.0  # past the deadline, for an encoder that is back to send its first keyframe


def restamped(frame: Frame, offset_ms: int) -> Frame:
    """The frame with its timestamp moved by `offset_ms` on the 32-bit RTMP clock."""
    return replace(frame, timestamp_ms=(frame.timestamp_ms + offset_ms) & TIMESTAMP_MASK) if offset_ms else frame


class SlatePlayer:
    """The slate's frames from `start_ms` on (media time), paced against `started_at_s` (monotonic)."""

    def __init__(self, slate: Slate, start_ms: int, started_at_s: float) -> None:
        self.slate = slate
        self.start_ms = start_ms
        self.started_at_s = started_at_s
        video = slate.shape.video
        self._video_ms_per_frame = 1000 * video.fps_den / video.fps_num
        audio = slate.shape.audio
        self._audio_ms_per_frame = AAC_FRAME_SAMPLES * 1000 / audio.sample_rate if audio else None
        self._video_sent = 0
        self._audio_sent = 0
        self.frames_sent = 0

    def _video_ms(self, index: int) -> int:
        return self.start_ms + round(index * self._video_ms_per_frame)

    def _audio_ms(self, index: int) -> int | None:
        per = self._audio_ms_per_frame
        return None if per is None else self.start_ms + round(index * per)

    def opening(self, now_s: float) -> list[Frame]:
        """The slate's sequence headers, sent before its first frame: the decoders switch to its pictures."""
        slate, ts = self.slate, self.start_ms & TIMESTAMP_MASK
        codec = slate.shape.video.codec
        frames = [Frame(m.VIDEO, ts, slate.video_header, FrameKind.SEQUENCE_HEADER, codec, now_s)]
        if slate.audio_header is not None:
            frames.append(Frame(m.AUDIO, ts, slate.audio_header, FrameKind.SEQUENCE_HEADER, "aac", now_s))
        return frames

    def next_ms(self) -> int:
        """The media time of the next frame due (video or audio)."""
        audio = self._audio_ms(self._audio_sent)
        video = self._video_ms(self._video_sent)
        return video if audio is None else min(video, audio)

    def next_due_s(self) -> float:
        return self.started_at_s + (self.next_ms() - self.start_ms) / 1000

    def end_ms(self) -> int:
        """Where a stream that follows the slate continues: after the last video and audio frame sent."""
        audio = self._audio_ms(self._audio_sent)
        video = self._video_ms(self._video_sent)
        return video if audio is None else max(video, audio)

    def due(self, now_s: float) -> list[Frame]:
        """The frames whose time has come, in timestamp order (video first on a tie, as encoders send)."""
        horizon_ms = self.start_ms + (now_s - self.started_at_s) * 1000
        slate = self.slate
        codec = slate.shape.video.codec
        frames: list[Frame] = []
        while True:
            video_ms = self._video_ms(self._video_sent)
            audio_ms = self._audio_ms(self._audio_sent)
            if audio_ms is not None and audio_ms < video_ms and audio_ms <= horizon_ms:
                assert slate.silence is not None
                frames.append(Frame(m.AUDIO, audio_ms & TIMESTAMP_MASK, slate.silence, FrameKind.AUDIO, "aac", now_s))
                self._audio_sent += 1
            elif video_ms <= horizon_ms:
                index = self._video_sent % len(slate.gop)
                kind = slate.gop_kinds[index]
                frames.append(Frame(m.VIDEO, video_ms & TIMESTAMP_MASK, slate.gop[index], kind, codec, now_s))
                self._video_sent += 1
            else:
                break
        self.frames_sent += len(frames)
        return frames


class SwitchBack:
    """A returning encoder's frames while the slate still plays: its metadata and sequence headers are
    kept, its media dropped (it would not decode without what came before its first keyframe), and at that
    keyframe `offer` returns what the ingest gets next, restamped: the headers, then the keyframe."""

    def __init__(self) -> None:
        self.headers = HeaderCache()
        self.frames_dropped = 0

    def offer(self, frame: Frame, continue_at_ms: int) -> tuple[list[Frame], int] | None:
        """None while waiting; at the first keyframe, the frames to send and the timestamp offset that
        makes the encoder's stream continue at `continue_at_ms` (applied to everything it sends next)."""
        kind = frame.kind
        if kind in (FrameKind.SEQUENCE_HEADER, FrameKind.METADATA):
            self.headers.update(frame)
            return None
        if kind is not FrameKind.VIDEO_KEY:
            self.frames_dropped += 1
            return None
        offset_ms = (continue_at_ms - frame.timestamp_ms) & TIMESTAMP_MASK
        key_ms = continue_at_ms & TIMESTAMP_MASK
        opening = [replace(header, timestamp_ms=key_ms) for header in self.headers.frames()]
        header = self.headers.video_sequence_header
        if header is not None:
            frame = replace(frame, payload=with_parameter_sets(frame.payload, header.payload))
        return [*opening, restamped(frame, offset_ms)], offset_ms


def with_parameter_sets(keyframe: bytes, sequence_header: bytes) -> bytes:
    """A keyframe body with its parameter sets in-band, ahead of its slices: SPS and PPS for AVC, VPS, SPS
    and PPS for HEVC (either FLV form).

    Why: a new sequence header mid-stream reaches a decoder as new extradata, but parsers along the way
    (FFmpeg's H.264 parser, which demuxers and remuxers run) read extradata once and would parse the new
    slices with the old parameter sets. In-band parameter sets are read by everyone. The slate carries
    them in each keyframe (slate_maker.py); an encoder coming back gets them here, on its first keyframe.
    Anything but a legacy AVC or an HEVC keyframe with its sequence header is returned unchanged."""
    hevc = sequence_header_record(sequence_header)
    if hevc is not None:
        return _with_hevc_parameter_sets(keyframe, hevc[0])
    if len(keyframe) < 5 or keyframe[0] != 0x17 or keyframe[1] != 1 or len(sequence_header) < 6:
        return keyframe
    if sequence_header[0] != 0x17 or sequence_header[1] != 0:
        return keyframe
    try:
        config = parse_avc_decoder_configuration(sequence_header[5:])
    except ProtocolError:
        return keyframe
    size = config.nal_length_size
    units = b"".join(len(unit).to_bytes(size, "big") + unit for unit in (*config.sps, *config.pps))
    return keyframe[:5] + units + keyframe[5:]


def _with_hevc_parameter_sets(keyframe: bytes, record: bytes) -> bytes:
    at = nal_units_at(keyframe)
    if at is None or (keyframe[0] >> 4) & 0x07 != 1:  # a keyframe (both forms: frame type 1)
        return keyframe
    try:
        config = parse_hevc_decoder_configuration(record)
    except ProtocolError:
        return keyframe
    size = config.nal_length_size
    units = b"".join(len(unit).to_bytes(size, "big") + unit for unit in config.in_band())
    return keyframe[:at] + units + keyframe[at:]


class Hold:
    """The slate's task: sends its frames as they fall due until `hold_s` has passed (`run` returns) or the
    relay switches back to an encoder (`stop`)."""

    def __init__(
        self,
        slate: Slate,
        *,
        start_ms: int,
        hold_s: float,
        send: Callable[[Frame], None],
        clock: Callable[[], float],
    ) -> None:
        now = clock()
        self.player = SlatePlayer(slate, start_ms, now)
        self.started_at_s = now
        self.deadline_s = now + hold_s
        self.switch: SwitchBack | None = None  # an encoder is back, waiting for its keyframe
        self._send = send
        self._clock = clock
        self.ended_at_s: float | None = None

    def remaining_s(self) -> float:
        return max(0.0, self.deadline_s - self._clock())

    def held_s(self) -> float:
        end = self.ended_at_s if self.ended_at_s is not None else self._clock()
        return max(0.0, end - self.started_at_s)

    async def run(self) -> None:
        """Returns when the hold has run its time with no encoder back (the relay then ends the stream)."""
        send, player, clock = self._send, self.player, self._clock
        for frame in player.opening(clock()):
            send(frame)
        while True:
            now = clock()
            for frame in player.due(now):
                send(frame)
            # An encoder that is back gets until its first keyframe (a few seconds at most) past the deadline.
            grace_s = SWITCH_GRACE_S if self.switch is not None else 0.0
            if now >= self.deadline_s + grace_s:
                self.ended_at_s = now
                return
            wake_s = player.next_due_s()
            if now < self.deadline_s:
                wake_s = min(wake_s, self.deadline_s)
            await asyncio.sleep(max(0.0, wake_s - clock()))

    def stop(self) -> None:
        if self.ended_at_s is None:
            self.ended_at_s = self._clock()

"""What the relay sees coming in from the encoder, counted per frame: the raw figures behind a relay sample.

Counters only (monotonic totals and the latest values); rates per second are the source's job, from the
difference between two readings. Not for anything the ingest side sees: destinations count that.
"""

from __future__ import annotations

from collections import Counter

from agent.relay.failover import ms_before
from agent.relay.frames import PICTURE_KINDS, Frame, FrameKind, composition_offset_of
from agent.rtmp import messages as m


class IngressStats:
    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.frames_total: Counter[FrameKind] = Counter()
        self.bytes_total = 0
        self.video_pictures_total = 0
        self.publishes_total = 0
        self.publishers_refused_total = 0
        self.connections_dropped_total = 0  # malformed input, timeouts
        self.stalls_total = 0
        self.publishing = False
        self.encoder: str | None = None
        self.video_codec: str | None = None
        self.audio_codec: str | None = None
        self.last_video_ts_ms: int | None = None
        self.last_audio_ts_ms: int | None = None
        # The latest display time of the stream's pictures (timestamp plus composition offset): with B-frames,
        # a picture already sent may be shown up to several frames after the last one's timestamp.
        self.latest_display_ms: int | None = None
        self.last_keyframe_ts_ms: int | None = None
        self.keyframe_interval_s: float | None = None
        self.last_media_at_s: float | None = None
        self._in_stall = False

    def record(self, frame: Frame) -> None:
        kind = frame.kind
        self.frames_total[kind] += 1
        self.bytes_total += len(frame.payload)
        type_id = frame.type_id
        if type_id == m.VIDEO and kind is not FrameKind.METADATA:
            self.video_codec = frame.codec
            if kind in PICTURE_KINDS:
                self.video_pictures_total += 1
                self.last_video_ts_ms = frame.timestamp_ms
                display_ms = (frame.timestamp_ms + composition_offset_of(frame.payload)) & 0xFFFFFFFF
                if self.latest_display_ms is None or ms_before(self.latest_display_ms, display_ms):
                    self.latest_display_ms = display_ms
            if kind is FrameKind.VIDEO_KEY:
                if self.last_keyframe_ts_ms is not None and frame.timestamp_ms > self.last_keyframe_ts_ms:
                    self.keyframe_interval_s = (frame.timestamp_ms - self.last_keyframe_ts_ms) / 1000
                self.last_keyframe_ts_ms = frame.timestamp_ms
        elif type_id == m.AUDIO:
            self.audio_codec = frame.codec
            if kind is FrameKind.AUDIO:
                self.last_audio_ts_ms = frame.timestamp_ms
        if kind is not FrameKind.METADATA:
            now_s = frame.received_at_s
            last = self.last_media_at_s
            if self._in_stall or (last is not None and now_s - last > self.stall_s):
                self.check_stall(now_s)
            self.last_media_at_s = now_s

    def check_stall(self, now_s: float) -> bool:
        """Whether media has stopped for more than `stall_s` while publishing; counts each stall once."""
        last = self.last_media_at_s
        stalled = self.publishing and last is not None and now_s - last > self.stall_s
        if stalled and not self._in_stall:
            self.stalls_total += 1
        self._in_stall = stalled
        return stalled

    @property
    def av_drift_ms(self) -> int | None:
        """Audio timestamp minus video timestamp of the latest frames (positive: audio ahead)."""
        if self.last_audio_ts_ms is None or self.last_video_ts_ms is None:
            return None
        return self.last_audio_ts_ms - self.last_video_ts_ms

    def stream_started(self, encoder: str | None) -> None:
        self.publishing = True
        self.publishes_total += 1
        self.encoder = encoder
        self.last_video_ts_ms = self.last_audio_ts_ms = self.last_keyframe_ts_ms = self.latest_display_ms = None
        self.keyframe_interval_s = None
        self.last_media_at_s = None
        self._in_stall = False

    def stream_ended(self) -> None:
        self.publishing = False
        self._in_stall = False

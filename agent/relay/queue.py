"""The queue toward one ingest, bounded in media time and bytes, with the drop policy for congestion.

Like OBS's send buffer (plugins/obs-outputs/rtmp-stream.c), but in the network path and for any encoder:
above `disposable_drop_ms` of queued media, non-reference video frames go first (nothing depends on them);
above `inter_drop_ms`, every inter frame goes and the next ones too until a keyframe arrives, so what
reaches the ingest always decodes. Audio, metadata and sequence headers are never dropped for congestion.
Only when the hard bounds (`max_ms`, `max_bytes`) are still exceeded, e.g. the ingest is unreachable,
whole GOPs go from the head, audio included: memory stays bounded however slow the uplink is.
Every dropped frame is counted by reason. No I/O here: `destination.py` pops what it can send.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from dataclasses import dataclass

from agent.relay.frames import Frame, FrameKind


class DropReason(enum.StrEnum):
    DISPOSABLE = "disposable"  # non-reference frame, queue above disposable_drop_ms
    UNTIL_KEYFRAME = "until_keyframe"  # inter frame, queue above inter_drop_ms (until the next keyframe)
    QUEUE_FULL = "queue_full"  # whole GOP from the head: hard bound in ms or bytes
    INGEST_LOST = "ingest_lost"  # skipped to resume a new ingest connection at a keyframe


@dataclass(frozen=True, slots=True)
class QueueLimits:
    disposable_drop_ms: int = 700
    inter_drop_ms: int = 900
    max_ms: int = 10_000
    max_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.disposable_drop_ms <= self.inter_drop_ms <= self.max_ms:
            raise ValueError("need 0 < disposable_drop_ms <= inter_drop_ms <= max_ms")


def _ms_after(newer: int, older: int) -> int:
    """`newer - older` on the 32-bit RTMP clock (it wraps after 49 days); 0 if `newer` is earlier."""
    delta = (newer - older) & 0xFFFFFFFF
    return delta if delta < 0x80000000 else 0


_MEDIA = frozenset(
    {FrameKind.VIDEO_KEY, FrameKind.VIDEO_INTER, FrameKind.VIDEO_DISPOSABLE, FrameKind.AUDIO, FrameKind.VIDEO_OTHER}
)


class MediaQueue:
    """Frames in arrival order. `push` applies the policy; `pop` hands out the oldest frame."""

    def __init__(self, limits: QueueLimits | None = None) -> None:
        self.limits = limits or QueueLimits()
        self._frames: deque[tuple[int, Frame]] = deque()  # (arrival sequence, frame)
        self._sequence = 0
        self._last_key_sequence = -1
        self._newest_media_ts: int | None = None
        self.size_bytes = 0
        self.waiting_for_keyframe = False
        self.dropped: Counter[DropReason] = Counter()
        self.dropped_bytes = 0
        self.peak_bytes = 0
        self.peak_ms = 0
        # While no ingest connection takes the stream (and until a new one has caught up), congestion
        # drops would shred the GOPs we keep for it: only the hard bounds apply (failover.py sets this).
        self.holding = False

    def __len__(self) -> int:
        return len(self._frames)

    def contains(self, frame: Frame) -> bool:
        return any(queued is frame for _, queued in self._frames)

    @property
    def duration_ms(self) -> int:
        """Media time queued: newest media timestamp minus the oldest queued one (OBS measures the same)."""
        if self._newest_media_ts is None:
            return 0
        for _, frame in self._frames:
            if frame.kind in _MEDIA:
                return _ms_after(self._newest_media_ts, frame.timestamp_ms)
        return 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def push(self, frame: Frame) -> None:
        kind = frame.kind
        if kind.droppable and self.waiting_for_keyframe:
            if kind is not FrameKind.VIDEO_KEY:
                self._count_drop(frame, DropReason.UNTIL_KEYFRAME)
                return
            self.waiting_for_keyframe = False
        self._sequence += 1
        if kind is FrameKind.VIDEO_KEY:
            self._last_key_sequence = self._sequence
        if kind in _MEDIA:
            self._newest_media_ts = frame.timestamp_ms
        self._frames.append((self._sequence, frame))
        self.size_bytes += frame.size_bytes
        self._enforce()

    def pop(self) -> Frame | None:
        if not self._frames:
            return None
        _, frame = self._frames.popleft()
        self.size_bytes -= frame.size_bytes
        return frame

    def requeue_front(self, frames: list[Frame]) -> None:
        """Put frames already sent (to a connection since lost) back at the head, oldest first, so the
        next connection gets them again; the bounds apply as to any frame."""
        if not frames:
            return
        first = self._frames[0][0] if self._frames else self._sequence + 1
        start = first - len(frames)
        for offset, frame in enumerate(reversed(frames), start=1):
            sequence = first - offset
            self._frames.appendleft((sequence, frame))
            self.size_bytes += frame.size_bytes
            if frame.kind is FrameKind.VIDEO_KEY and self._last_key_sequence < start:
                self._last_key_sequence = sequence
        if self._newest_media_ts is None:
            self._newest_media_ts = next((f.timestamp_ms for f in reversed(frames) if f.kind in _MEDIA), None)
        self._enforce()

    def peek(self) -> Frame | None:
        return self._frames[0][1] if self._frames else None

    def first_media_timestamp_ms(self) -> int | None:
        return next((frame.timestamp_ms for _, frame in self._frames if frame.kind in _MEDIA), None)

    def restart_at_keyframe(self) -> None:
        """For a new ingest connection mid-stream: drop the inter frames queued before the first queued
        keyframe (their references went out on the old connection, or never did), or wait for one."""
        kept: deque[tuple[int, Frame]] = deque()
        keyframe_seen = False
        for item in self._frames:
            frame = item[1]
            if not keyframe_seen and frame.kind in (FrameKind.VIDEO_INTER, FrameKind.VIDEO_DISPOSABLE):
                self._count_drop(frame, DropReason.UNTIL_KEYFRAME)
                self.size_bytes -= frame.size_bytes
                continue
            keyframe_seen = keyframe_seen or frame.kind is FrameKind.VIDEO_KEY
            kept.append(item)
        self._frames = kept
        if not keyframe_seen:
            self.waiting_for_keyframe = True

    def clear(self) -> None:
        self._frames.clear()
        self.size_bytes = 0
        self._newest_media_ts = None
        self.waiting_for_keyframe = False

    # ------------------------------------------------------------------------------------- policy

    def _enforce(self) -> None:
        limits = self.limits
        span = self.duration_ms
        if self.holding:
            pass
        elif span > limits.inter_drop_ms:
            self._purge_inter_frames()
        elif span > limits.disposable_drop_ms:
            self._purge({FrameKind.VIDEO_DISPOSABLE}, DropReason.DISPOSABLE)
        while (self.duration_ms > limits.max_ms or self.size_bytes > limits.max_bytes) and self._drop_head_gop():
            pass
        if self.size_bytes > limits.max_bytes:
            self._drop_superseded_headers()
        self.peak_bytes = max(self.peak_bytes, self.size_bytes)
        self.peak_ms = max(self.peak_ms, self.duration_ms)

    def _purge_inter_frames(self) -> None:
        """Drop every queued non-key picture. If one came after the newest keyframe, the frames still to
        come reference it: drop those too, until the next keyframe."""
        broke_chain = any(
            sequence > self._last_key_sequence
            for sequence, frame in self._frames
            if frame.kind in (FrameKind.VIDEO_INTER, FrameKind.VIDEO_DISPOSABLE)
        )
        self._purge({FrameKind.VIDEO_DISPOSABLE}, DropReason.DISPOSABLE)
        self._purge({FrameKind.VIDEO_INTER}, DropReason.UNTIL_KEYFRAME)
        if broke_chain:
            self.waiting_for_keyframe = True

    def _purge(self, kinds: set[FrameKind], reason: DropReason) -> None:
        if not any(frame.kind in kinds for _, frame in self._frames):
            return
        kept: deque[tuple[int, Frame]] = deque()
        for item in self._frames:
            if item[1].kind in kinds:
                self._count_drop(item[1], reason)
                self.size_bytes -= item[1].size_bytes
            else:
                kept.append(item)
        self._frames = kept

    def _drop_head_gop(self) -> bool:
        """Drop media from the head up to (not including) the second keyframe still queued; headers stay.
        Returns False when nothing could be dropped."""
        keyframes_seen = 0
        kept: deque[tuple[int, Frame]] = deque()
        dropped_any = False
        items = self._frames
        while items:
            sequence, frame = items[0]
            if frame.kind is FrameKind.VIDEO_KEY:
                keyframes_seen += 1
                if keyframes_seen == 2:
                    break
            items.popleft()
            if frame.kind in _MEDIA:
                self._count_drop(frame, DropReason.QUEUE_FULL)
                self.size_bytes -= frame.size_bytes
                dropped_any = True
            else:
                kept.append((sequence, frame))
        if not items:
            # No second keyframe queued: what comes next references what we just dropped.
            self.waiting_for_keyframe = True
        kept.extend(items)
        self._frames = kept
        return dropped_any

    def _drop_superseded_headers(self) -> None:
        """The byte bound counts everything held: with no media left to drop, sequence headers and data
        messages that a newer one of the same kind replaces go, oldest first, until it holds (300 sequence
        headers of 1 MB toward an unreachable ingest took a 64 MiB queue to 286 MiB)."""
        newest: dict[tuple[FrameKind, int], int] = {}
        for sequence, frame in self._frames:
            if frame.kind not in _MEDIA:
                newest[(frame.kind, frame.type_id)] = sequence
        kept: deque[tuple[int, Frame]] = deque()
        for sequence, frame in self._frames:
            if (
                self.size_bytes > self.limits.max_bytes
                and frame.kind not in _MEDIA
                and newest[(frame.kind, frame.type_id)] != sequence
            ):
                self._count_drop(frame, DropReason.QUEUE_FULL)
                self.size_bytes -= frame.size_bytes
            else:
                kept.append((sequence, frame))
        self._frames = kept

    def drop_until_keyframe(self) -> list[Frame]:
        """Before a new ingest connection: drop queued media up to the oldest queued keyframe (it would not
        decode without what went to the lost connection); headers stay. Without a queued keyframe, drop the
        video and wait for the next keyframe. Returns the dropped frames."""
        dropped: list[Frame] = []
        kept: deque[tuple[int, Frame]] = deque()
        found = False
        for sequence, frame in self._frames:
            if found or frame.kind not in _MEDIA or frame.kind is FrameKind.VIDEO_KEY:
                found = found or frame.kind is FrameKind.VIDEO_KEY
                kept.append((sequence, frame))
                continue
            dropped.append(frame)
            self._count_drop(frame, DropReason.INGEST_LOST)
            self.size_bytes -= frame.size_bytes
        self._frames = kept
        if not found:
            self.waiting_for_keyframe = True
        return dropped

    def _count_drop(self, frame: Frame, reason: DropReason) -> None:
        self.dropped[reason] += 1
        self.dropped_bytes += frame.size_bytes

"""The queue toward one ingest, bounded in media time and bytes, with the drop policy for congestion.

The rule every drop keeps: a picture goes only when nothing still sent references it; once a picture other
pictures reference has gone, every picture after it goes too, up to a keyframe, and when the stream resumes
at an open keyframe (HEVC CRA, H.264 I with a recovery point), the leading pictures that reference what came
before it go as well. What reaches the ingest always decodes, for H.264 with B-frames, B-pyramids and
several reference frames, and for HEVC (frames.py and references.py say which picture is which).

Like OBS's send buffer (plugins/obs-outputs/rtmp-stream.c), the backlog is the media time from the oldest
queued non-key picture to the newest picture let in. Above `disposable_drop_ms`, non-reference pictures go
(nothing depends on them), the queued ones and, for `THIN_HOLD_MS` of media after the queue was last that
long, the arriving ones: a stream that keeps more of each GOP's reference pictures has shorter freezes.
Above `inter_drop_ms`, the oldest GOP's queued pictures go first if a keyframe is queued behind them (the
chain resumes there); otherwise every queued picture goes and every arriving one until the next keyframe.
Audio, metadata, sequence headers and keyframes are never dropped for congestion. Only when the hard bounds
(`max_ms`, `max_bytes`) are still exceeded, e.g. the ingest is unreachable, whole GOPs go from the head,
audio included: memory stays bounded however slow the uplink is. Every dropped frame is counted by reason.

While a drop is under way (`dropping`), every frame must come through `push`, even when nothing is queued:
destination.py sends directly only when the queue is empty and not dropping. No I/O here.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from dataclasses import dataclass
from typing import Final

from agent.relay.frames import PICTURE_KINDS, Frame, FrameKind


class DropReason(enum.StrEnum):
    DISPOSABLE = "disposable"  # non-reference picture, queue above disposable_drop_ms (and shortly after)
    UNTIL_KEYFRAME = "until_keyframe"  # a picture whose references went, or one it needs went (until a keyframe)
    QUEUE_FULL = "queue_full"  # whole GOP from the head: hard bound in ms or bytes
    INGEST_LOST = "ingest_lost"  # skipped to resume a new ingest connection at a keyframe


# After the backlog was last above disposable_drop_ms, arriving non-reference pictures keep going for this
# much media time: under a lasting congestion they would only take the place of the reference pictures that
# keep the picture moving, and OBS's own frame drops thin the same pictures first.
THIN_HOLD_MS: Final = 3000


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


_MEDIA: Final = PICTURE_KINDS | {FrameKind.AUDIO, FrameKind.VIDEO_OTHER}
_NON_KEY: Final = PICTURE_KINDS - {FrameKind.VIDEO_KEY}


class MediaQueue:
    """Frames in arrival order. `push` applies the policy; `pop` hands out the oldest frame."""

    def __init__(self, limits: QueueLimits | None = None) -> None:
        self.limits = limits or QueueLimits()
        self._frames: deque[Frame] = deque()
        self._newest_media_ts: int | None = None
        self._newest_picture_ts: int | None = None  # of the pictures let in
        self.size_bytes = 0
        # The chain is broken: every arriving picture goes until a keyframe.
        self.waiting_for_keyframe = False
        # The stream resumed at a keyframe after a drop: its leading pictures go (until the first other one).
        self._after_resume = False
        self._thin_until_ts: int | None = None  # arriving non-reference pictures go until this media time
        self.dropping = False  # any of the three: frames must come through push
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
        return any(queued is frame for queued in self._frames)

    @property
    def duration_ms(self) -> int:
        """Media time queued: newest media timestamp minus the oldest queued one (what the figures show)."""
        if self._newest_media_ts is None:
            return 0
        for frame in self._frames:
            if frame.kind in _MEDIA:
                return _ms_after(self._newest_media_ts, frame.timestamp_ms)
        return 0

    @property
    def backlog_ms(self) -> int:
        """What the drop thresholds measure, as OBS does: from the oldest queued non-key picture to the newest
        picture let in (0 when no picture could be dropped). Audio arriving while pictures are being dropped
        does not count: it would keep the policy dropping long after the pictures have gone."""
        newest = self._newest_picture_ts
        if newest is None:
            return 0
        for frame in self._frames:
            if frame.kind in _NON_KEY:
                return _ms_after(newest, frame.timestamp_ms)
        return 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def push(self, frame: Frame) -> None:
        kind = frame.kind
        if kind in PICTURE_KINDS:
            if self.dropping and not self._let_in(frame):
                return
            self._newest_picture_ts = frame.timestamp_ms
        if kind in _MEDIA:
            self._newest_media_ts = frame.timestamp_ms
        self._frames.append(frame)
        self.size_bytes += frame.size_bytes
        self._enforce()

    def pop(self) -> Frame | None:
        if not self._frames:
            return None
        frame = self._frames.popleft()
        self.size_bytes -= frame.size_bytes
        return frame

    def requeue_front(self, frames: list[Frame]) -> None:
        """Put frames already sent (to a connection since lost) back at the head, oldest first, so the
        next connection gets them again; the bounds apply as to any frame."""
        if not frames:
            return
        self._frames.extendleft(reversed(frames))
        self.size_bytes += sum(frame.size_bytes for frame in frames)
        if self._newest_media_ts is None:
            self._newest_media_ts = next((f.timestamp_ms for f in reversed(frames) if f.kind in _MEDIA), None)
        if self._newest_picture_ts is None:
            self._newest_picture_ts = next((f.timestamp_ms for f in reversed(frames) if f.kind in PICTURE_KINDS), None)
        self._enforce()

    def peek(self) -> Frame | None:
        return self._frames[0] if self._frames else None

    def first_media_timestamp_ms(self) -> int | None:
        return next((frame.timestamp_ms for frame in self._frames if frame.kind in _MEDIA), None)

    def restart_at_keyframe(self) -> None:
        """For a new ingest connection mid-stream: drop the pictures queued before the first queued keyframe
        (their references went out on the old connection, or never did), or wait for one."""
        self._skip_to_keyframe(_NON_KEY, DropReason.UNTIL_KEYFRAME)

    def drop_until_keyframe(self) -> list[Frame]:
        """Before a new ingest connection: drop queued media up to the oldest queued keyframe (it would not
        decode without what went to the lost connection); headers stay. Without a queued keyframe, drop the
        media and wait for the next keyframe. Returns the dropped frames."""
        return self._skip_to_keyframe(_MEDIA, DropReason.INGEST_LOST)

    def clear(self) -> None:
        self._frames.clear()
        self.size_bytes = 0
        self._newest_media_ts = self._newest_picture_ts = None
        self.waiting_for_keyframe = self._after_resume = False
        self._thin_until_ts = None
        self.dropping = False

    # ------------------------------------------------------------------------------------- policy

    def _let_in(self, picture: Frame) -> bool:
        """Whether an arriving picture may be queued while a drop is under way (counts it if not)."""
        kind = picture.kind
        if self.waiting_for_keyframe:
            if kind is not FrameKind.VIDEO_KEY:
                self._count_drop(picture, DropReason.UNTIL_KEYFRAME)
                return False
            self.waiting_for_keyframe = False
            self._after_resume = True
        elif self._after_resume:
            if kind is FrameKind.VIDEO_LEADING:
                self._count_drop(picture, DropReason.UNTIL_KEYFRAME)
                return False
            self._after_resume = kind is FrameKind.VIDEO_KEY
        thin_until = self._thin_until_ts
        if thin_until is not None:
            if _ms_after(picture.timestamp_ms, thin_until) > 0:
                self._thin_until_ts = None
            elif kind is FrameKind.VIDEO_DISPOSABLE and not self.holding:
                self._count_drop(picture, DropReason.DISPOSABLE)
                return False
        self._update_dropping()
        return True

    def _update_dropping(self) -> None:
        self.dropping = self.waiting_for_keyframe or self._after_resume or self._thin_until_ts is not None

    def _enforce(self) -> None:
        limits = self.limits
        if not self.holding and self.backlog_ms > limits.disposable_drop_ms:
            newest = self._newest_picture_ts
            if newest is not None:
                self._thin_until_ts = (newest + THIN_HOLD_MS) & 0xFFFFFFFF
            self._drop_queued({FrameKind.VIDEO_DISPOSABLE}, DropReason.DISPOSABLE)
            while self.backlog_ms > limits.inter_drop_ms:
                self._drop_references()
        while (self.duration_ms > limits.max_ms or self.size_bytes > limits.max_bytes) and self._drop_head_gop():
            pass
        if self.size_bytes > limits.max_bytes:
            self._drop_superseded_headers()
        self._update_dropping()
        self.peak_bytes = max(self.peak_bytes, self.size_bytes)
        self.peak_ms = max(self.peak_ms, self.duration_ms)

    def _drop_oldest_gop_tail(self) -> bool:
        """If a keyframe is queued behind the oldest queued non-key picture, drop the pictures between them (the
        end of the oldest GOP) and resume at the keyframe. Returns whether it could."""
        frames = self._frames
        first = next((index for index, frame in enumerate(frames) if frame.kind in _NON_KEY), None)
        if first is None:
            return False
        key = next((i for i in range(first + 1, len(frames)) if frames[i].kind is FrameKind.VIDEO_KEY), None)
        if key is None:
            return False
        kept: deque[Frame] = deque()
        for index, frame in enumerate(frames):
            if first <= index < key and frame.kind in _NON_KEY:
                self._count_drop(frame, DropReason.UNTIL_KEYFRAME)
                self.size_bytes -= frame.size_bytes
            else:
                kept.append(frame)
        self._frames = kept
        self._drop_leading(key - (len(frames) - len(kept)))  # every frame dropped came before the keyframe
        return True

    def _drop_references(self) -> None:
        """Bring the backlog down by dropping reference pictures. If a keyframe is queued behind the oldest
        non-key picture, the oldest GOP's queued pictures go and the chain resumes at that keyframe. Otherwise
        the backlog is all in the current GOP: its newest pictures go (nothing queued or sent references a
        later picture), and every arriving one until the next keyframe, while the older ones still go out:
        the picture freezes for less time than if the queued ones went (what OBS drops)."""
        if self._drop_oldest_gop_tail():
            return
        frames = self._frames
        first = next(index for index, frame in enumerate(frames) if frame.kind in _NON_KEY)
        self.waiting_for_keyframe = True
        newest_kept: Frame | None = None
        for index in range(len(frames) - 1, first - 1, -1):
            frame = frames[index]
            if frame.kind not in PICTURE_KINDS:
                continue
            if (
                frame.kind is FrameKind.VIDEO_KEY
                or _ms_after(frame.timestamp_ms, frames[first].timestamp_ms) <= self.limits.inter_drop_ms
            ):
                newest_kept = frame
                break
            self._count_drop(frame, DropReason.UNTIL_KEYFRAME)
            self.size_bytes -= frame.size_bytes
            del frames[index]
        if newest_kept is None:
            newest_kept = next((f for f in reversed(frames) if f.kind in PICTURE_KINDS), None)
        self._newest_picture_ts = None if newest_kept is None else newest_kept.timestamp_ms

    def _drop_leading(self, key_index: int) -> None:
        """The stream resumes at the keyframe queued at `key_index`: its queued leading pictures go, and if no
        other picture is queued after them, the arriving ones too. A wait for the next keyframe stays: it is
        for what was dropped after the newest picture queued, which a keyframe queued before cannot end."""
        frames = self._frames
        kept: deque[Frame] = deque()
        leading = True
        for index, frame in enumerate(frames):
            if leading and index > key_index and frame.kind in PICTURE_KINDS:
                leading = frame.kind is FrameKind.VIDEO_LEADING
                if leading:
                    self._count_drop(frame, DropReason.UNTIL_KEYFRAME)
                    self.size_bytes -= frame.size_bytes
                    continue
            kept.append(frame)
        self._frames = kept
        self._after_resume = self._after_resume or leading

    def _drop_queued(self, kinds: set[FrameKind], reason: DropReason) -> None:
        if not any(frame.kind in kinds for frame in self._frames):
            return
        kept: deque[Frame] = deque()
        for frame in self._frames:
            if frame.kind in kinds:
                self._count_drop(frame, reason)
                self.size_bytes -= frame.size_bytes
            else:
                kept.append(frame)
        self._frames = kept

    def _drop_head_gop(self) -> bool:
        """Drop media from the head up to (not including) the second keyframe still queued; headers stay.
        Returns False when nothing could be dropped."""
        keyframes_seen = 0
        kept: deque[Frame] = deque()
        dropped_any = False
        frames = self._frames
        while frames:
            frame = frames[0]
            if frame.kind is FrameKind.VIDEO_KEY:
                keyframes_seen += 1
                if keyframes_seen == 2:
                    break
            frames.popleft()
            if frame.kind in _MEDIA:
                self._count_drop(frame, DropReason.QUEUE_FULL)
                self.size_bytes -= frame.size_bytes
                dropped_any = True
            else:
                kept.append(frame)
        resume_at = len(kept)
        kept.extend(frames)
        self._frames = kept
        if frames:
            self._drop_leading(resume_at)
        elif dropped_any:
            self.waiting_for_keyframe = True  # what comes next references what we just dropped
        return dropped_any

    def _drop_superseded_headers(self) -> None:
        """The byte bound counts everything held: with no media left to drop, sequence headers and data
        messages that a newer one of the same kind replaces go, oldest first, until it holds (300 sequence
        headers of 1 MB toward an unreachable ingest took a 64 MiB queue to 286 MiB)."""
        newest: dict[tuple[FrameKind, int], int] = {}
        for index, frame in enumerate(self._frames):
            if frame.kind not in _MEDIA:
                newest[(frame.kind, frame.type_id)] = index
        kept: deque[Frame] = deque()
        for index, frame in enumerate(self._frames):
            if (
                self.size_bytes > self.limits.max_bytes
                and frame.kind not in _MEDIA
                and newest[(frame.kind, frame.type_id)] != index
            ):
                self._count_drop(frame, DropReason.QUEUE_FULL)
                self.size_bytes -= frame.size_bytes
            else:
                kept.append(frame)
        self._frames = kept

    def _skip_to_keyframe(self, kinds: frozenset[FrameKind], reason: DropReason) -> list[Frame]:
        """Drop the frames of `kinds` queued before the oldest queued keyframe and resume there; without a
        queued keyframe, drop them all and wait for the next one. Returns the dropped frames."""
        dropped: list[Frame] = []
        kept: deque[Frame] = deque()
        key_index: int | None = None
        for frame in self._frames:
            if key_index is None and frame.kind is FrameKind.VIDEO_KEY:
                key_index = len(kept)
            if key_index is None and frame.kind in kinds:
                dropped.append(frame)
                self._count_drop(frame, reason)
                self.size_bytes -= frame.size_bytes
            else:
                kept.append(frame)
        self._frames = kept
        if key_index is None:
            self.waiting_for_keyframe = True
        else:
            self._drop_leading(key_index)
        self._update_dropping()
        return dropped

    def _count_drop(self, frame: Frame, reason: DropReason) -> None:
        self.dropped[reason] += 1
        self.dropped_bytes += frame.size_bytes

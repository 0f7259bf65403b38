"""The drop policy of the queue toward the ingest, frame by frame."""

from __future__ import annotations

from agent.relay.frames import Frame, FrameKind
from agent.relay.queue import DropReason, MediaQueue, QueueLimits
from agent.rtmp import messages as m

FPS = 30


def video(ts: int, kind: FrameKind, size: int = 1000) -> Frame:
    return Frame(m.VIDEO, ts, bytes(size), kind, "avc")


def audio(ts: int) -> Frame:
    return Frame(m.AUDIO, ts, bytes(100), FrameKind.AUDIO, "aac")


def stream(seconds: float, gop_frames: int = 60, disposable_every: int = 0) -> list[Frame]:
    """A 30 fps stream with audio every ~21 ms: keyframe every `gop_frames`, every Nth frame non-reference."""
    frames: list[Frame] = []
    audio_ts = 0
    for index in range(int(seconds * FPS)):
        ts = index * 1000 // FPS
        while audio_ts <= ts:
            frames.append(audio(audio_ts))
            audio_ts += 21
        if index % gop_frames == 0:
            kind = FrameKind.VIDEO_KEY
        elif disposable_every and index % disposable_every == 0:
            kind = FrameKind.VIDEO_DISPOSABLE
        else:
            kind = FrameKind.VIDEO_INTER
        frames.append(video(ts, kind, 20_000 if kind is FrameKind.VIDEO_KEY else 2000))
    return frames


def _chain_ok(original: list[Frame], sent: list[Frame]) -> bool:
    """An inter frame may be sent only if every referenced video frame since the last keyframe was sent."""
    sent_ids = {id(f) for f in sent}
    broken = False
    for frame in original:
        if frame.kind is FrameKind.VIDEO_KEY:
            broken = id(frame) not in sent_ids
        elif frame.kind is FrameKind.VIDEO_INTER:
            if id(frame) in sent_ids and broken:
                return False
            if id(frame) not in sent_ids:
                broken = True
        elif frame.kind is FrameKind.VIDEO_DISPOSABLE and id(frame) in sent_ids and broken:
            return False
    return True


def test_queue_below_thresholds_drops_nothing_and_keeps_order() -> None:
    queue = MediaQueue(QueueLimits(disposable_drop_ms=700, inter_drop_ms=900))
    frames = stream(0.6, disposable_every=3)
    for frame in frames:
        queue.push(frame)
    assert queue.dropped_total == 0
    assert [queue.pop() for _ in frames] == frames
    assert queue.pop() is None and queue.size_bytes == 0


def test_queue_drops_disposable_frames_first_above_the_first_threshold() -> None:
    queue = MediaQueue(QueueLimits(disposable_drop_ms=300, inter_drop_ms=900))
    frames = stream(0.8, gop_frames=60, disposable_every=2)
    for frame in frames:
        queue.push(frame)
    assert queue.dropped[DropReason.DISPOSABLE] > 0
    assert set(queue.dropped) == {DropReason.DISPOSABLE}
    kept = [f for f in iter(queue.pop, None)]
    assert all(f in kept for f in frames if f.kind is not FrameKind.VIDEO_DISPOSABLE)


def test_relay_drops_inter_frames_until_next_keyframe_when_queue_exceeds_threshold() -> None:
    queue = MediaQueue(QueueLimits(disposable_drop_ms=700, inter_drop_ms=900, max_ms=60_000))
    frames = stream(4.0, gop_frames=60)  # keyframes at 0, 2 s
    for frame in frames:
        queue.push(frame)  # nothing is ever sent: the uplink is gone
    kept = list(iter(queue.pop, None))
    assert queue.dropped[DropReason.UNTIL_KEYFRAME] > 0
    # Never audio, never keyframes.
    assert [f for f in kept if f.kind is FrameKind.AUDIO] == [f for f in frames if f.kind is FrameKind.AUDIO]
    assert [f for f in kept if f.kind is FrameKind.VIDEO_KEY] == [f for f in frames if f.kind is FrameKind.VIDEO_KEY]
    assert _chain_ok(frames, kept)
    # In the first GOP the pictures beyond 900 ms of backlog went, the older ones stayed (they still go out:
    # the picture freezes later); when the second keyframe came, the first GOP's queued pictures went (the
    # chain resumes there), and the second GOP kept its first 900 ms as the first one did.
    inter = [f.timestamp_ms for f in kept if f.kind is FrameKind.VIDEO_INTER]
    assert inter and min(inter) > 2000
    assert 800 <= max(inter) - min(inter) <= 900


def test_queue_that_drains_keeps_gops_whole_and_the_output_decodes() -> None:
    """Send at a third of the stream's rate: drops happen, and the output never breaks a reference chain."""
    queue = MediaQueue(QueueLimits(disposable_drop_ms=700, inter_drop_ms=900, max_ms=60_000))
    frames = stream(10.0, gop_frames=60, disposable_every=4)
    sent: list[Frame] = []
    budget = 0.0
    for frame in frames:
        queue.push(frame)
        budget += frame.size_bytes / 3
        while budget > 0 and (head := queue.pop()) is not None:
            sent.append(head)
            budget -= head.size_bytes
    sent.extend(iter(queue.pop, None))
    assert queue.dropped[DropReason.DISPOSABLE] > 0 and queue.dropped[DropReason.UNTIL_KEYFRAME] > 0
    assert _chain_ok(frames, sent)
    assert all(f in sent for f in frames if f.kind in (FrameKind.AUDIO, FrameKind.VIDEO_KEY))
    assert queue.peak_ms < 3000


def test_sequence_headers_and_metadata_are_never_dropped_even_by_the_hard_bound() -> None:
    queue = MediaQueue(QueueLimits(disposable_drop_ms=100, inter_drop_ms=200, max_ms=1000, max_bytes=2**20))
    header = Frame(m.VIDEO, 0, b"\x17\x00", FrameKind.SEQUENCE_HEADER, "avc")
    meta = Frame(m.DATA_AMF0, 0, b"\x02", FrameKind.METADATA, "amf")
    queue.push(meta)
    queue.push(header)
    for frame in stream(20.0, gop_frames=30):
        queue.push(frame)
    kept = list(iter(queue.pop, None))
    assert kept[:2] == [meta, header]
    assert queue.dropped[DropReason.QUEUE_FULL] > 0


def test_memory_stays_bounded_however_slow_the_uplink_is() -> None:
    limits = QueueLimits(disposable_drop_ms=700, inter_drop_ms=900, max_ms=5000, max_bytes=4 * 2**20)
    queue = MediaQueue(limits)
    for frame in stream(120.0, gop_frames=60):  # two minutes, nothing sent
        queue.push(frame)
        assert queue.size_bytes <= limits.max_bytes
    assert queue.duration_ms <= limits.max_ms
    assert queue.peak_bytes <= limits.max_bytes
    kept = list(iter(queue.pop, None))
    assert kept[0].kind is FrameKind.VIDEO_KEY or kept[0].kind is FrameKind.AUDIO
    first_video = next(f for f in kept if f.type_id == m.VIDEO)
    assert first_video.kind is FrameKind.VIDEO_KEY  # what is left starts where a decoder can


def test_byte_bound_alone_drops_whole_gops_from_the_head() -> None:
    queue = MediaQueue(QueueLimits(disposable_drop_ms=50_000, inter_drop_ms=50_000, max_ms=60_000, max_bytes=2**20))
    frames = stream(30.0, gop_frames=30)
    for frame in frames:
        queue.push(frame)
    assert queue.size_bytes <= 2**20
    assert set(queue.dropped) == {DropReason.QUEUE_FULL}
    kept = list(iter(queue.pop, None))
    assert _chain_ok(frames, kept)


def test_a_new_connection_mid_stream_restarts_at_the_first_queued_keyframe() -> None:
    queue = MediaQueue(QueueLimits(disposable_drop_ms=50_000, inter_drop_ms=50_000, max_ms=60_000))
    frames = [video(0, FrameKind.VIDEO_INTER), audio(10), video(33, FrameKind.VIDEO_INTER),
              video(66, FrameKind.VIDEO_KEY), video(99, FrameKind.VIDEO_INTER)]  # fmt: skip
    for frame in frames:
        queue.push(frame)
    queue.restart_at_keyframe()
    assert list(iter(queue.pop, None)) == [frames[1], frames[3], frames[4]]
    assert queue.dropped[DropReason.UNTIL_KEYFRAME] == 2
    queue.push(video(132, FrameKind.VIDEO_INTER))
    queue.restart_at_keyframe()  # nothing keyframe queued: wait for the next one
    assert queue.waiting_for_keyframe and len(queue) == 0
    queue.push(video(165, FrameKind.VIDEO_INTER))
    assert len(queue) == 0

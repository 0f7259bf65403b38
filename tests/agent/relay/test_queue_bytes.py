"""The queue's byte bound counts everything it holds, sequence headers and data messages included."""

from __future__ import annotations

from agent.relay.frames import Frame, FrameKind
from agent.relay.queue import DropReason, MediaQueue, QueueLimits
from agent.rtmp import messages as m

MIB = 1024 * 1024


def test_300_sequence_headers_of_1_mb_toward_an_unreachable_ingest_stay_within_max_bytes() -> None:
    queue = MediaQueue(QueueLimits(max_bytes=64 * MIB))
    queue.holding = True  # no ingest connection takes the stream
    for index in range(300):
        queue.push(Frame(m.VIDEO, index * 33, bytes([0x17, 0]) + bytes(MIB), FrameKind.SEQUENCE_HEADER, "avc"))
        queue.push(Frame(m.DATA_AMF0, index * 33, bytes(MIB), FrameKind.METADATA, "amf"))
        assert queue.size_bytes <= 64 * MIB
        assert queue.peak_bytes <= 64 * MIB
    assert queue.dropped[DropReason.QUEUE_FULL] > 500


def test_the_newest_header_of_each_kind_is_kept_however_full() -> None:
    queue = MediaQueue(QueueLimits(max_bytes=MIB))
    audio_header = Frame(m.AUDIO, 0, b"\xaf\x00\x12\x10", FrameKind.SEQUENCE_HEADER, "aac")
    queue.push(audio_header)
    for index in range(5):
        queue.push(Frame(m.VIDEO, index, bytes([0x17, 0]) + bytes(MIB // 2), FrameKind.SEQUENCE_HEADER, "avc"))
    kept = []
    while (frame := queue.pop()) is not None:
        kept.append(frame)
    assert kept[0] is audio_header
    assert [frame.timestamp_ms for frame in kept[1:]] == [4]  # only the newest video header: it replaces the rest


def test_media_goes_before_any_header() -> None:
    queue = MediaQueue(QueueLimits(max_bytes=MIB))
    header = Frame(m.VIDEO, 0, bytes([0x17, 0]) + bytes(100), FrameKind.SEQUENCE_HEADER, "avc")
    queue.push(header)
    for index in range(40):
        kind = FrameKind.VIDEO_KEY if index % 10 == 0 else FrameKind.VIDEO_INTER
        queue.push(Frame(m.VIDEO, index * 33, bytes(100_000), kind, "avc"))
    assert queue.peek() is header
    assert queue.dropped[DropReason.QUEUE_FULL] > 0

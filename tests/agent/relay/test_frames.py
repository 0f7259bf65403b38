"""Frame classification: legacy FLV (AVC, AAC) and Enhanced RTMP ex-header frames built from the veovera spec."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.relay.frames import Frame, FrameClassifier, FrameKind, HeaderCache, composition_offset_of, never_cached
from agent.rtmp import messages as m

KEY, INTER, DISP, SEQ, OTHER, AUD, META = (
    FrameKind.VIDEO_KEY, FrameKind.VIDEO_INTER, FrameKind.VIDEO_DISPOSABLE, FrameKind.SEQUENCE_HEADER,
    FrameKind.VIDEO_OTHER, FrameKind.AUDIO, FrameKind.METADATA,
)  # fmt: skip


def ex_video(frame_type: int, packet_type: int, fourcc: bytes, body: bytes = b"") -> bytes:
    """E-RTMP: IsExHeader(1) | FrameType(3) | PacketType(4), then the FourCC."""
    return bytes([0x80 | frame_type << 4 | packet_type]) + fourcc + body


def nal(header: bytes, payload: bytes = b"\x88\x84") -> bytes:
    data = header + payload
    return len(data).to_bytes(4, "big") + data


# HEVCDecoderConfigurationRecord: numTemporalLayers = 1, lengthSizeMinusOne = 3, no parameter set arrays.
HEVC_RECORD = bytes([1] + [0] * 20 + [1 << 3 | 0x03, 0])
HEVC_IDR = nal(bytes([19 << 1, 1]))  # IDR_W_RADL
HEVC_TRAIL_R = nal(bytes([1 << 1, 1]))  # referenced
HEVC_TRAIL_N = nal(bytes([0, 1]))  # sub-layer non-reference
CTS = b"\x00\x00\x21"

CASES = [
    # legacy AVC / AAC
    ("avc sequence header", m.VIDEO, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff", SEQ, "avc"),
    ("avc keyframe", m.VIDEO, b"\x17\x01" + CTS + nal(b"\x65"), KEY, "avc"),
    ("avc referenced inter", m.VIDEO, b"\x27\x01" + CTS + nal(b"\x41"), INTER, "avc"),
    ("avc non-reference slice after an SEI", m.VIDEO, b"\x27\x01" + CTS + nal(b"\x06") + nal(b"\x01"), DISP, "avc"),
    ("avc end of sequence", m.VIDEO, b"\x17\x02\x00\x00\x00", OTHER, "avc"),
    ("flv disposable inter frame", m.VIDEO, b"\x32\x00\x00", DISP, "h263"),
    ("aac sequence header", m.AUDIO, b"\xaf\x00\x12\x10", SEQ, "aac"),
    ("aac frame", m.AUDIO, b"\xaf\x01\x21\x00", AUD, "aac"),
    ("metadata", m.DATA_AMF0, b"\x02\x00\x0d@setDataFrame", META, "amf"),
    # E-RTMP video: frame type is (b0 >> 4) & 7. nginx-rtmp reads b0 >> 4 (9 for a keyframe, 10 for inter).
    ("hevc SequenceStart", m.VIDEO, ex_video(1, 0, b"hvc1", HEVC_RECORD), SEQ, "hevc"),
    ("hevc CodedFrames keyframe", m.VIDEO, ex_video(1, 1, b"hvc1", CTS + HEVC_IDR), KEY, "hevc"),
    ("hevc CodedFramesX keyframe", m.VIDEO, ex_video(1, 3, b"hvc1", HEVC_IDR), KEY, "hevc"),
    ("hevc CodedFrames inter", m.VIDEO, ex_video(2, 1, b"hvc1", CTS + HEVC_TRAIL_R), INTER, "hevc"),
    ("hevc CodedFramesX non-reference", m.VIDEO, ex_video(2, 3, b"hvc1", HEVC_TRAIL_N), DISP, "hevc"),
    ("hevc SequenceEnd", m.VIDEO, ex_video(1, 2, b"hvc1"), OTHER, "hevc"),
    ("hevc Metadata (HDR)", m.VIDEO, ex_video(0, 4, b"hvc1", b"\x02\x00\x09colorInfo"), META, "hevc"),
    ("av1 SequenceStart", m.VIDEO, ex_video(1, 0, b"av01", b"\x81\x08\x0c\x00"), SEQ, "av1"),
    ("av1 keyframe", m.VIDEO, ex_video(1, 1, b"av01", b"\x12\x00\x0a\x0b"), KEY, "av1"),
    ("av1 inter", m.VIDEO, ex_video(2, 1, b"av01", b"\x12\x00\x32\x10"), INTER, "av1"),
    ("vp9 keyframe", m.VIDEO, ex_video(1, 1, b"vp09", b"\x82\x49"), KEY, "vp9"),
    ("command frame", m.VIDEO, ex_video(5, 1, b"hvc1", b"\x00"), OTHER, "hevc"),
    ("multitrack one track keyframe", m.VIDEO, bytes([0x80 | 1 << 4 | 6, 0x01]) + b"hvc1\x00" + HEVC_IDR, KEY, "hevc"),
    ("multitrack one track inter", m.VIDEO, bytes([0x80 | 2 << 4 | 6, 0x03]) + b"av01\x00\x12\x00", INTER, "av1"),
    # E-RTMP audio
    ("opus SequenceStart", m.AUDIO, b"\x90Opus\x01\x02", SEQ, "opus"),
    ("opus frame", m.AUDIO, b"\x91Opus\xfc\xff", AUD, "opus"),
]


@pytest.mark.parametrize(("type_id", "body", "kind", "codec"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_frames_are_classified_from_their_headers(type_id: int, body: bytes, kind: FrameKind, codec: str) -> None:
    classifier = FrameClassifier()
    classifier.classify(m.VIDEO, ex_video(1, 0, b"hvc1", HEVC_RECORD))  # as every HEVC stream starts
    assert classifier.classify(type_id, body) == (kind, codec)


def test_eRTMP_keyframes_are_never_droppable_where_nginx_rtmp_would_think_so() -> None:
    body = ex_video(1, 1, b"hvc1", CTS + HEVC_IDR)
    assert body[0] >> 4 == 9  # what nginx-rtmp takes for the frame type: not a keyframe to it
    kind, _ = FrameClassifier().classify(m.VIDEO, body)
    assert kind is FrameKind.VIDEO_KEY


def test_nal_length_size_comes_from_the_avc_sequence_header() -> None:
    classifier = FrameClassifier()
    record = bytes([1, 0x64, 0, 0x1F, 0xFC | 1, 0xE0, 0])  # lengthSizeMinusOne = 1: 2-byte NAL lengths
    assert classifier.classify(m.VIDEO, b"\x17\x00" + CTS + record)[0] is SEQ
    two_byte_nal = b"\x00\x03\x01\x88\x84"  # nal_ref_idc 0
    assert classifier.classify(m.VIDEO, b"\x27\x01" + CTS + two_byte_nal)[0] is DISP


def test_truncated_and_empty_bodies_are_kept_not_crashed_on() -> None:
    classifier = FrameClassifier()
    for body in (b"", b"\x27", b"\x27\x01", b"\x27\x01\x00\x00\x00\xff\xff\xff\xff", b"\x91", b"\x96", b"\x90"):
        kind, _ = classifier.classify(m.VIDEO, body)
        assert kind is not FrameKind.VIDEO_DISPOSABLE or body[:1] == b"\x32"


def test_header_cache_keeps_the_latest_metadata_and_both_sequence_headers_in_send_order() -> None:
    cache = HeaderCache()
    meta = Frame(m.DATA_AMF0, 0, b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData", META, "amf")
    video = Frame(m.VIDEO, 0, b"\x17\x00", SEQ, "avc")
    audio = Frame(m.AUDIO, 0, b"\xaf\x00", SEQ, "aac")
    other_data = Frame(m.DATA_AMF0, 5, b"\x02\x00\x0aonTextData", META, "amf")
    for frame in (audio, video, meta, other_data):
        cache.update(frame)
    assert cache.frames() == [meta, video, audio]


CACHED_OR_TEACHING = {FrameKind.SEQUENCE_HEADER, FrameKind.METADATA}


@pytest.mark.parametrize(("type_id", "body", "kind", "codec"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_fast_lane_takes_no_header_and_every_plain_picture_or_audio_frame(
    type_id: int, body: bytes, kind: FrameKind, codec: str
) -> None:
    """`never_cached` (what the relay's fast lane forwards before classifying) is never true of a sequence
    header or metadata, and is true of the ordinary pictures and audio frames of AVC, HEVC, AV1, AAC, Opus."""
    if kind in CACHED_OR_TEACHING:
        assert not never_cached(type_id, body)
    elif type_id in (m.AUDIO, m.VIDEO) and kind is not FrameKind.VIDEO_OTHER:
        multitrack = type_id == m.VIDEO and body[0] & 0x8F == 0x86  # judged on the slow path, on purpose
        assert never_cached(type_id, body) is not multitrack


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([m.AUDIO, m.VIDEO, m.DATA_AMF0]), st.binary(max_size=40))
def test_what_the_fast_lane_takes_never_teaches_the_classifier_or_fills_the_header_cache(
    type_id: int, body: bytes
) -> None:
    classifier = FrameClassifier()
    classifier.nal_length_size = 3  # so that a sequence header that changes it shows
    if never_cached(type_id, body):
        kind, _ = classifier.classify(type_id, body)
        assert kind not in CACHED_OR_TEACHING
        assert classifier.nal_length_size == 3


def test_a_pictures_composition_offset_is_read_where_its_body_carries_one() -> None:
    late = (166).to_bytes(3, "big")
    early = (-33 & 0xFFFFFF).to_bytes(3, "big")
    assert composition_offset_of(bytes([0x27, 0x01]) + late + b"\x00") == 166  # legacy AVC picture
    assert composition_offset_of(bytes([0x2C, 0x01]) + early + b"\x00") == -33  # legacy HEVC (codec id 12)
    assert composition_offset_of(ex_video(2, 1, b"hvc1", late + HEVC_TRAIL_R)) == 166  # E-RTMP CodedFrames
    assert composition_offset_of(ex_video(2, 1, b"avc1", early + b"\x00")) == -33
    assert composition_offset_of(ex_video(2, 3, b"hvc1", HEVC_TRAIL_N)) == 0  # CodedFramesX: none carried
    assert composition_offset_of(ex_video(2, 1, b"av01", late)) == 0  # AV1 has no offset field
    assert composition_offset_of(bytes([0x17, 0x00]) + late) == 0  # a sequence header, not a picture
    assert composition_offset_of(bytes([0x22, 0x00, 0x00])) == 0  # H.263, and too short to carry one

"""Reference roles read from literal NAL unit bytes (H.264 and HEVC), and the classifier's leading pictures."""

from __future__ import annotations

import pytest

from agent.relay.frames import FrameClassifier, FrameKind
from agent.relay.references import Role, StreamConfig, avc_config, avc_role, hevc_config, hevc_role
from agent.rtmp import messages as m


def units(*nals: bytes, size: int = 4) -> bytes:
    return b"".join(len(nal).to_bytes(size, "big") + nal for nal in nals)


SEI, AUD = b"\x06\x05\x01\xff", b"\x09\xf0"
AVC_CASES = [
    ("IDR slice", units(b"\x65\x88\x84"), Role.CLEAN_KEY),
    ("IDR slice after SPS, PPS and an SEI", units(b"\x67\x64", b"\x68\xee", SEI, b"\x65\x88"), Role.CLEAN_KEY),
    ("P slice, nal_ref_idc 2", units(b"\x41\x9a"), Role.REFERENCE),
    ("B-pyramid reference B, nal_ref_idc 2", units(AUD, b"\x41\x9e"), Role.REFERENCE),
    ("strict B-pyramid reference B, nal_ref_idc 1", units(b"\x21\x9e"), Role.REFERENCE),
    ("non-reference B, nal_ref_idc 0", units(SEI, b"\x01\x9e"), Role.NON_REFERENCE),
    ("data partition A, referenced", units(b"\x42\x00"), Role.REFERENCE),
    ("no slice at all", units(SEI), Role.UNKNOWN),
    ("zero length", b"\x00\x00\x00\x00\x41", Role.UNKNOWN),
]


@pytest.mark.parametrize(("body", "role"), [c[1:] for c in AVC_CASES], ids=[c[0] for c in AVC_CASES])
def test_h264_roles_come_from_the_first_slice_nal_header(body: bytes, role: Role) -> None:
    assert avc_role(body, 0) is role


def test_h264_nal_length_size_from_the_configuration_record() -> None:
    record = bytes([1, 0x64, 0, 0x1F, 0xFC | 1, 0xE0, 0])
    config = avc_config(record)
    assert config is not None and config.nal_length_size == 2
    assert avc_role(units(b"\x01\x9e", size=2), 0, 2) is Role.NON_REFERENCE
    assert avc_config(b"\x00\x01") is None


def hevc_nal(nal_type: int, temporal_id: int = 0, layer_id: int = 0) -> bytes:
    return bytes([nal_type << 1 | layer_id >> 5, (layer_id & 0x1F) << 3 | (temporal_id + 1), 0xAF, 0x08])


ONE_LAYER = StreamConfig(highest_temporal_id=0)
TWO_LAYERS = StreamConfig(highest_temporal_id=1)
HEVC_CASES = [
    ("IDR_W_RADL", units(hevc_nal(35), hevc_nal(19)), ONE_LAYER, Role.CLEAN_KEY),
    ("IDR_N_LP", units(hevc_nal(20)), ONE_LAYER, Role.CLEAN_KEY),
    ("CRA (open GOP)", units(hevc_nal(32), hevc_nal(33), hevc_nal(34), hevc_nal(21)), ONE_LAYER, Role.OPEN_KEY),
    ("BLA_W_RADL", units(hevc_nal(17)), ONE_LAYER, Role.OPEN_KEY),
    ("TRAIL_R", units(hevc_nal(1)), ONE_LAYER, Role.REFERENCE),
    ("TRAIL_N in the only sub-layer", units(hevc_nal(39), hevc_nal(0)), ONE_LAYER, Role.NON_REFERENCE),
    ("TRAIL_N below the highest sub-layer", units(hevc_nal(0)), TWO_LAYERS, Role.REFERENCE),
    ("TSA_N in the highest sub-layer", units(hevc_nal(2, temporal_id=1)), TWO_LAYERS, Role.NON_REFERENCE),
    ("TRAIL_N when the sub-layers are unknown", units(hevc_nal(0)), StreamConfig(), Role.REFERENCE),
    ("RASL_N", units(hevc_nal(8)), ONE_LAYER, Role.LEADING),
    ("RASL_R", units(hevc_nal(9)), ONE_LAYER, Role.LEADING),
    ("RADL_N: decodable from its IDR, non-reference", units(hevc_nal(6)), ONE_LAYER, Role.NON_REFERENCE),
    ("an enhancement layer's slice is skipped", units(hevc_nal(0, layer_id=1), hevc_nal(1)), ONE_LAYER,
     Role.REFERENCE),
    ("no VCL NAL unit", units(hevc_nal(39)), ONE_LAYER, Role.UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize(("body", "config", "role"), [c[1:] for c in HEVC_CASES], ids=[c[0] for c in HEVC_CASES])
def test_hevc_roles_come_from_the_first_vcl_nal_unit(body: bytes, config: StreamConfig, role: Role) -> None:
    assert hevc_role(body, 0, config) is role


def hevc_record(temporal_layers: int, sps_max_sub_layers_minus1: int | None) -> bytes:
    head = bytes([1] + [0] * 20 + [temporal_layers << 3 | 0x03])
    if sps_max_sub_layers_minus1 is None:
        return head + b"\x00"
    sps = bytes([33 << 1, 1, 0x01 | sps_max_sub_layers_minus1 << 1, 0x60])
    vps = bytes([32 << 1, 1, 0x0C, 0x01])
    arrays = b"".join(
        bytes([0x80 | nal[0] >> 1]) + b"\x00\x01" + len(nal).to_bytes(2, "big") + nal for nal in (vps, sps)
    )
    return head + b"\x02" + arrays


def test_hevc_sub_layers_from_the_record_or_else_its_sps() -> None:
    assert hevc_config(hevc_record(1, None)) == StreamConfig(4, 0)
    assert hevc_config(hevc_record(3, None)) == StreamConfig(4, 2)
    assert hevc_config(hevc_record(0, 1)) == StreamConfig(4, 1)  # "unknown" in the record: the SPS says
    assert hevc_config(hevc_record(0, None)) == StreamConfig(4, 6)  # nothing says: assume the most
    assert hevc_config(b"\x01\x02") is None


def avc_body(frame_type: int, cts_ms: int, *nals: bytes) -> bytes:
    return bytes([frame_type << 4 | 7, 1]) + (cts_ms & 0xFFFFFF).to_bytes(3, "big") + units(*nals)


def test_h264_pictures_shown_before_an_open_keyframe_are_its_leading_pictures() -> None:
    """x264 --open-gop: the keyframe is an I picture (not an IDR) with B-frames after it that are shown before
    it and reference the GOP before. Decoding order I(dts 100, pts 200), B(133, 133), B(166, 166), P(200, 300)."""
    classifier = FrameClassifier()
    i_frame = avc_body(1, 100, SEI, b"\x61\x88")  # nal_ref_idc 3, type 1: not an IDR
    assert classifier.classify(m.VIDEO, i_frame, 100)[0] is FrameKind.VIDEO_KEY
    assert classifier.classify(m.VIDEO, avc_body(2, 0, b"\x41\x9e"), 133)[0] is FrameKind.VIDEO_LEADING
    assert classifier.classify(m.VIDEO, avc_body(2, 0, b"\x01\x9e"), 166)[0] is FrameKind.VIDEO_LEADING
    assert classifier.classify(m.VIDEO, avc_body(2, 100, b"\x41\x9a"), 200)[0] is FrameKind.VIDEO_INTER
    # After the first picture shown after the keyframe, none is leading any more.
    assert classifier.classify(m.VIDEO, avc_body(2, 0, b"\x01\x9e"), 233)[0] is FrameKind.VIDEO_DISPOSABLE


def test_h264_pictures_after_an_idr_are_never_leading() -> None:
    classifier = FrameClassifier()
    assert classifier.classify(m.VIDEO, avc_body(1, 100, b"\x65\x88"), 100)[0] is FrameKind.VIDEO_KEY
    assert classifier.classify(m.VIDEO, avc_body(2, -100, b"\x01\x9e"), 133)[0] is FrameKind.VIDEO_DISPOSABLE


def test_hevc_rasl_pictures_are_leading_and_radl_ones_are_not() -> None:
    classifier = FrameClassifier()
    classifier.classify(m.VIDEO, b"\x90hvc1" + hevc_record(1, None))  # E-RTMP SequenceStart
    coded = b"\xa3hvc1"  # E-RTMP CodedFramesX, inter frame
    assert classifier.classify(m.VIDEO, coded + units(hevc_nal(8)))[0] is FrameKind.VIDEO_LEADING
    assert classifier.classify(m.VIDEO, coded + units(hevc_nal(7)))[0] is FrameKind.VIDEO_INTER
    assert classifier.classify(m.VIDEO, coded + units(hevc_nal(0)))[0] is FrameKind.VIDEO_DISPOSABLE

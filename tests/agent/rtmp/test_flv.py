"""FLV tags round-trip, and sequence headers / keyframes are recognised for AVC, HEVC (both forms) and AAC."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.rtmp import flv


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.builds(flv.FlvTag, st.sampled_from([8, 9, 18]), st.integers(0, 0xFFFFFFFF), st.binary(max_size=300)),
        max_size=10,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_tags_written_to_a_file_read_back_identical_in_any_piece_size(tags: list[flv.FlvTag], piece: int) -> None:
    data = flv.flv_header() + b"".join(flv.write_tag(tag) for tag in tags)
    reader = flv.FlvReader()
    read: list[flv.FlvTag] = []
    for start in range(0, len(data), piece):
        read += reader.receive_data(data[start : start + piece])
    assert read == tags


def test_a_file_without_the_flv_signature_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="FLV signature"):
        flv.read_flv(b"RIFF" + bytes(20))


def test_avc_bodies_are_told_apart() -> None:
    header = flv.avc_video_body(b"\x01\x64", keyframe=True, sequence_header=True)
    key = flv.avc_video_body(b"nal", keyframe=True)
    inter = flv.avc_video_body(b"nal", keyframe=False)
    assert flv.is_avc_sequence_header(header) and not flv.is_keyframe(header)
    assert flv.is_keyframe(key) and not flv.is_avc_sequence_header(key)
    assert not flv.is_keyframe(inter)
    assert flv.video_info(inter) == flv.VideoInfo("avc", keyframe=False, sequence_header=False)


def test_hevc_in_legacy_codec_id_12_and_enhanced_rtmp_fourcc_forms() -> None:
    legacy = bytes([0x1C, 0x00, 0, 0, 0]) + b"\x01"
    enhanced_start = bytes([0x80 | (1 << 4) | 0]) + b"hvc1" + b"\x01"
    enhanced_frame = bytes([0x80 | (1 << 4) | 1]) + b"hvc1" + b"\x00\x00\x00nal"
    assert flv.is_hevc_sequence_header(legacy)
    assert flv.is_hevc_sequence_header(enhanced_start)
    assert flv.is_keyframe(enhanced_frame) and not flv.is_hevc_sequence_header(enhanced_frame)
    assert not flv.is_avc_sequence_header(enhanced_start)


def test_aac_sequence_header_and_raw_frames() -> None:
    assert flv.is_aac_sequence_header(flv.aac_audio_body(b"\x11\x90", sequence_header=True))
    assert not flv.is_aac_sequence_header(flv.aac_audio_body(b"\x21\x00"))
    assert not flv.is_aac_sequence_header(b"\x2f\x00")  # MP3 is not AAC


def test_empty_video_body_is_a_protocol_error_not_an_index_error() -> None:
    with pytest.raises(ProtocolError):
        flv.video_info(b"")


@pytest.mark.parametrize("record", [b"", b"\x02", b"\x01\x64\x00\x1f\xff\xe1\x00\x10abc"])
def test_truncated_or_wrong_avc_configuration_is_a_protocol_error(record: bytes) -> None:
    with pytest.raises(ProtocolError):
        flv.parse_avc_decoder_configuration(record)


def test_end_of_sequence_marker_is_not_a_keyframe() -> None:
    end_of_sequence = bytes([0x17, 0x02, 0, 0, 0])  # what ffmpeg sends last
    assert not flv.is_keyframe(end_of_sequence) and not flv.is_avc_sequence_header(end_of_sequence)

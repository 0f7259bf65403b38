"""What an HEVC stream's sequence header says a slate must match: its HEVCDecoderConfigurationRecord (ISO/IEC
14496-15 8.3.3) and the SPS in it (ITU-T H.265 7.3.2.2): profile, tier, level, picture size after the
conformance window, chroma format, bit depth, and the frame rate when the VUI carries timing.

Also the two ways FLV carries HEVC, so a slate can be sent in the form the ingest has seen: enhanced RTMP's
FourCC `hvc1` (OBS 29.1+, FFmpeg 6.1+) and the older codec id 12 (Chinese CDNs, SRS, OBS forks). No I/O and
nothing decoded; the relay's per-frame reading of HEVC is references.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from agent.errors import ProtocolError
from agent.relay.bitstream import Bits, unescape

HEVC_VPS: Final = 32
HEVC_SPS: Final = 33
HEVC_PPS: Final = 34
PARAMETER_SETS: Final = (HEVC_VPS, HEVC_SPS, HEVC_PPS)  # the order a decoder needs them in band
LEGACY_CODEC_ID: Final = 12
_EX_HEADER: Final = 0x80
_EX_SEQUENCE_START: Final = 0
_EX_CODED_FRAMES: Final = 1
_EX_CODED_FRAMES_X: Final = 3  # no composition time offset: it is 0


@dataclass(frozen=True, slots=True)
class HevcConfig:
    nal_length_size: int
    parameter_sets: dict[int, tuple[bytes, ...]]  # by NAL unit type: VPS, SPS, PPS (and SEI, when carried)

    def in_band(self) -> list[bytes]:
        """VPS, SPS and PPS NAL units, in that order."""
        return [nal for nal_type in PARAMETER_SETS for nal in self.parameter_sets.get(nal_type, ())]


def parse_hevc_decoder_configuration(record: bytes) -> HevcConfig:
    """The record of an HEVC sequence header (the body after its 5-byte FLV or E-RTMP tag header)."""
    if len(record) < 23 or record[0] != 1:
        raise ProtocolError("HEVCDecoderConfigurationRecord too short or not version 1")
    sets: dict[int, tuple[bytes, ...]] = {}
    pos, end = 23, len(record)
    for _ in range(record[22]):
        if pos + 3 > end:
            raise ProtocolError("HEVCDecoderConfigurationRecord truncated")
        nal_type, count = record[pos] & 0x3F, int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos += 3
        units = []
        for _ in range(count):
            length = int.from_bytes(record[pos : pos + 2], "big")
            unit = record[pos + 2 : pos + 2 + length]
            if pos + 2 > end or len(unit) != length:
                raise ProtocolError("HEVCDecoderConfigurationRecord truncated")
            units.append(bytes(unit))
            pos += 2 + length
        sets[nal_type] = sets.get(nal_type, ()) + tuple(units)
    return HevcConfig((record[21] & 0x03) + 1, sets)


@dataclass(frozen=True, slots=True)
class HevcSps:
    profile_idc: int  # general_profile_idc: 1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions
    compatibility_flags: int  # general_profile_compatibility_flag[32], flag 0 first
    tier: int  # general_tier_flag: 0 Main, 1 High
    level_idc: int  # 30 x the level: 123 is 4.1
    chroma_format_idc: int
    bit_depth: int
    width: int
    height: int
    fps: Fraction | None


def parse_hevc_sps(nal: bytes) -> HevcSps:
    """The fields of an HEVC SPS NAL unit a slate must match. IndexError if it is truncated before the
    picture size and bit depth; a VUI that cannot be read gives no frame rate (fps None)."""
    bits = Bits(unescape(nal[2:]))  # after the 2-byte NAL unit header
    bits.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    bits.u(1)  # sps_temporal_id_nesting_flag
    bits.u(2)  # general_profile_space
    tier, profile_idc = bits.u(1), bits.u(5)
    compatibility_flags = bits.u(32)
    bits.skip(48)  # progressive, interlaced, non-packed, frame-only and the 44 constraint bits
    level_idc = bits.u(8)
    present = [(bits.u(1), bits.u(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1:
        bits.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        bits.skip(88 * profile_present + 8 * level_present)
    bits.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = bits.ue()
    if chroma_format_idc == 3:
        bits.u(1)  # separate_colour_plane_flag
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance_window_flag: offsets in chroma samples
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        sub_width = 2 if chroma_format_idc in (1, 2) else 1
        sub_height = 2 if chroma_format_idc == 1 else 1
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    bit_depth = bits.ue() + 8
    bits.ue()  # bit_depth_chroma_minus8
    try:
        fps = _fps_after_bit_depth(bits, max_sub_layers_minus1)
    except IndexError:
        fps = None
    return HevcSps(profile_idc, compatibility_flags, tier, level_idc, chroma_format_idc, bit_depth, width, height, fps)


def _fps_after_bit_depth(bits: Bits, max_sub_layers_minus1: int) -> Fraction | None:
    """The rest of the SPS up to the VUI's timing information (H.265 7.3.2.2.1, E.2.1)."""
    log2_max_poc_lsb = bits.ue() + 4
    ordering_info_present = bits.u(1)
    for _ in range(0 if ordering_info_present else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        bits.ue(), bits.ue(), bits.ue()
    for _ in range(6):  # coding and transform block sizes, transform hierarchy depths
        bits.ue()
    if bits.u(1) and bits.u(1):  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _skip_scaling_list_data(bits)
    bits.u(1), bits.u(1)  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if bits.u(1):  # pcm_enabled_flag
        bits.skip(8)
        bits.ue(), bits.ue()
        bits.u(1)
    _skip_short_term_ref_pic_sets(bits, bits.ue())
    if bits.u(1):  # long_term_ref_pics_present_flag
        for _ in range(bits.ue()):
            bits.skip(log2_max_poc_lsb + 1)
    bits.u(1), bits.u(1)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if not bits.u(1):  # vui_parameters_present_flag
        return None
    if bits.u(1) and bits.u(8) == 255:  # aspect_ratio_info_present_flag, then Extended_SAR
        bits.skip(32)
    if bits.u(1):  # overscan_info_present_flag
        bits.u(1)
    if bits.u(1):  # video_signal_type_present_flag
        bits.skip(4)
        if bits.u(1):
            bits.skip(24)
    if bits.u(1):  # chroma_loc_info_present_flag
        bits.ue(), bits.ue()
    bits.skip(3)  # neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    if bits.u(1):  # default_display_window_flag
        bits.ue(), bits.ue(), bits.ue(), bits.ue()
    if not bits.u(1):  # vui_timing_info_present_flag
        return None
    units, scale = bits.u(32), bits.u(32)
    return Fraction(scale, units) if units and scale else None  # HEVC's tick is a whole picture


def _skip_scaling_list_data(bits: Bits) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not bits.u(1):  # scaling_list_pred_mode_flag
                bits.ue()
                continue
            if size_id > 1:
                bits.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                bits.se()


def _skip_short_term_ref_pic_sets(bits: Bits, count: int) -> None:
    """st_ref_pic_set(i) for i < count (7.3.7): an inter-predicted set's size depends on the one before it."""
    delta_pocs: list[int] = []
    for index in range(count):
        if index and bits.u(1):  # inter_ref_pic_set_prediction_flag (delta_idx_minus1 is slice-header only)
            bits.u(1)
            bits.ue()
            used = 0
            for _ in range(delta_pocs[index - 1] + 1):
                if bits.u(1) or bits.u(1):  # used_by_curr_pic_flag, else use_delta_flag
                    used += 1
            delta_pocs.append(used)
        else:
            negative, positive = bits.ue(), bits.ue()
            for _ in range(negative + positive):
                bits.ue()
                bits.u(1)
            delta_pocs.append(negative + positive)


# ---------------------------------------------------------------------------------- FLV forms


def sequence_header_record(body: bytes) -> tuple[bytes, bool] | None:
    """The record in an HEVC sequence header body and whether the body is the legacy (codec id 12) form;
    None if the body is no HEVC sequence header."""
    if len(body) < 6:
        return None
    if body[0] & _EX_HEADER:
        if body[0] & 0x0F == _EX_SEQUENCE_START and body[1:5] == b"hvc1":
            return body[5:], False
        return None
    if body[0] & 0x0F == LEGACY_CODEC_ID and body[1] == 0:
        return body[5:], True
    return None


def nal_units_at(body: bytes) -> int | None:
    """Where the NAL units of an HEVC coded-frame body start (either form); None for anything else."""
    if len(body) < 5:
        return None
    if body[0] & _EX_HEADER:
        packet_type = body[0] & 0x0F
        if body[1:5] != b"hvc1" or packet_type not in (_EX_CODED_FRAMES, _EX_CODED_FRAMES_X):
            return None
        return 8 if packet_type == _EX_CODED_FRAMES else 5
    return 5 if body[0] & 0x0F == LEGACY_CODEC_ID and body[1] == 1 else None


def to_legacy_form(body: bytes) -> bytes:
    """An E-RTMP `hvc1` video body in the legacy codec-id-12 form (frame type, AVC-style packet type and
    composition time offset, then the same record or NAL units). Anything else is returned unchanged."""
    if len(body) < 5 or not body[0] & _EX_HEADER or body[1:5] != b"hvc1":
        return body
    frame_type, packet_type = (body[0] >> 4) & 0x07, body[0] & 0x0F
    first = bytes([(frame_type << 4) | LEGACY_CODEC_ID])
    if packet_type == _EX_SEQUENCE_START:
        return first + b"\x00\x00\x00\x00" + body[5:]
    if packet_type == _EX_CODED_FRAMES:
        return first + b"\x01" + body[5:]
    if packet_type == _EX_CODED_FRAMES_X:
        return first + b"\x01\x00\x00\x00" + body[5:]
    return body

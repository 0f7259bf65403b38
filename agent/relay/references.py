"""Which pictures other pictures reference, read from the NAL unit headers of H.264 and HEVC access units.

The drop policy (queue.py) may drop a picture only when nothing still sent references it. For H.264 that is
`nal_ref_idc == 0`: any other picture takes a `frame_num` and a place in the decoder's reference list, so
dropping it breaks every following picture up to the next IDR (a gap in `frame_num`, a missing colocated
picture, a memory-management command for a picture the decoder never got). For HEVC it is a sub-layer
non-reference type (TRAIL_N, RASL_N, ...) in the highest temporal sub-layer of the stream: lower sub-layers'
"_N" pictures may still be referenced by the sub-layers above them.

A keyframe may also be an open one (HEVC CRA/BLA, H.264 I picture with a recovery point): the pictures
after it in decoding order that come before it in display order (HEVC RASL, H.264 "leading" B-frames)
reference pictures before it, so when the stream resumes at such a keyframe they go too.

Sans-I/O and cheap: the bodies are AVCC/HVCC (length-prefixed NAL units, as FLV and E-RTMP carry them);
only the NAL unit headers of the first coded slice are read, and a parameter set's first bytes from the
decoder configuration record. Not a parser of slice headers, SEI or parameter sets beyond that.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

# H.264 nal_unit_type values.
AVC_SLICE: Final = 1
AVC_SLICE_PARTITION_A: Final = 2
AVC_IDR: Final = 5
# HEVC nal_unit_type values.
HEVC_RASL_N: Final = 8
HEVC_RASL_R: Final = 9
HEVC_BLA_W_LP: Final = 16
HEVC_IDR_W_RADL: Final = 19
HEVC_IDR_N_LP: Final = 20
HEVC_CRA: Final = 21
HEVC_LAST_IRAP: Final = 23
HEVC_LAST_VCL: Final = 31
HEVC_SPS: Final = 33
HEVC_MAX_TEMPORAL_ID: Final = 6


class Role(enum.Enum):
    """What a coded picture is to the pictures around it."""

    CLEAN_KEY = "clean_key"  # IDR: nothing after it references anything before it
    OPEN_KEY = "open_key"  # CRA / BLA / non-IDR I: its leading pictures reference pictures before it
    REFERENCE = "reference"  # other pictures may reference it
    NON_REFERENCE = "non_reference"  # nothing references it: it can go alone
    LEADING = "leading"  # HEVC RASL: references pictures before its (open) keyframe
    UNKNOWN = "unknown"  # no coded slice found: treated as a reference


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What the decoder configuration record (the sequence header) says that the roles depend on."""

    nal_length_size: int = 4
    # HEVC: the highest TemporalId in the stream (sps_max_sub_layers_minus1). Only pictures of this sub-layer
    # can be non-reference for sure; until a record says otherwise, assume the largest (which makes no
    # "_N" picture below it droppable).
    highest_temporal_id: int = HEVC_MAX_TEMPORAL_ID


def avc_config(record: bytes | memoryview) -> StreamConfig | None:
    """From an AVCDecoderConfigurationRecord (the AVC sequence header after its tag header); None if malformed."""
    if len(record) < 5 or record[0] != 1:
        return None
    return StreamConfig(nal_length_size=(record[4] & 0x03) + 1)


def hevc_config(record: bytes | memoryview) -> StreamConfig | None:
    """From an HEVCDecoderConfigurationRecord: the NAL length size and the highest temporal sub-layer (the
    record's numTemporalLayers, or its SPS's sps_max_sub_layers_minus1 when the record says "unknown")."""
    if len(record) < 23 or record[0] != 1:
        return None
    nal_length_size = (record[21] & 0x03) + 1
    temporal_layers = (record[21] >> 3) & 0x07  # 0: unknown
    highest = temporal_layers - 1 if temporal_layers else _sps_highest_temporal_id(record)
    if highest is None:
        highest = HEVC_MAX_TEMPORAL_ID
    return StreamConfig(nal_length_size=nal_length_size, highest_temporal_id=highest)


def _sps_highest_temporal_id(record: bytes | memoryview) -> int | None:
    pos, end = 23, len(record)
    for _ in range(record[22]):
        if pos + 3 > end:
            return None
        nal_type = record[pos] & 0x3F
        count = int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > end:
                return None
            length = int.from_bytes(record[pos : pos + 2], "big")
            nal = record[pos + 2 : pos + 2 + length]
            if nal_type == HEVC_SPS and len(nal) >= 3:
                return (nal[2] >> 1) & 0x07  # after the 2-byte NAL header: vps id (4 bits), max_sub_layers_minus1 (3)
            pos += 2 + length
    return None


def avc_role(body: bytes | memoryview, pos: int, nal_length_size: int = 4) -> Role:
    """The role of an H.264 access unit whose NAL units start at `pos`, from its first coded slice (every
    slice of a picture has the same nal_ref_idc status and IDR-ness)."""
    end = len(body)
    while pos + nal_length_size < end:
        length = int.from_bytes(body[pos : pos + nal_length_size], "big")
        header = pos + nal_length_size
        if length <= 0:
            return Role.UNKNOWN
        nal = body[header]
        nal_type = nal & 0x1F
        if nal_type == AVC_IDR:
            return Role.CLEAN_KEY
        if AVC_SLICE <= nal_type <= AVC_SLICE_PARTITION_A:
            return Role.REFERENCE if nal & 0x60 else Role.NON_REFERENCE
        pos = header + length
    return Role.UNKNOWN


def hevc_role(body: bytes | memoryview, pos: int, config: StreamConfig) -> Role:
    """The role of an HEVC access unit whose NAL units start at `pos`, from its first VCL NAL unit of the base
    layer (every VCL NAL unit of a picture has the same type)."""
    size = config.nal_length_size
    end = len(body)
    while pos + size + 1 < end:
        length = int.from_bytes(body[pos : pos + size], "big")
        header = pos + size
        if length <= 1:
            return Role.UNKNOWN
        first, second = body[header], body[header + 1]
        nal_type = (first >> 1) & 0x3F
        layer_id = ((first & 0x01) << 5) | (second >> 3)
        if nal_type <= HEVC_LAST_VCL and layer_id == 0:
            if nal_type in (HEVC_IDR_W_RADL, HEVC_IDR_N_LP):
                return Role.CLEAN_KEY  # RADL pictures after IDR_W_RADL reference only the IDR and each other
            if HEVC_BLA_W_LP <= nal_type <= HEVC_LAST_IRAP:
                return Role.OPEN_KEY
            if nal_type in (HEVC_RASL_N, HEVC_RASL_R):
                return Role.LEADING
            sub_layer_non_reference = nal_type <= 14 and nal_type % 2 == 0
            temporal_id = (second & 0x07) - 1
            if sub_layer_non_reference and temporal_id >= config.highest_temporal_id:
                return Role.NON_REFERENCE
            return Role.REFERENCE
        pos = header + length
    return Role.UNKNOWN


def composition_offset_ms(body: bytes | memoryview, at: int) -> int:
    """The signed 24-bit composition time offset (PTS - DTS) at `at` in an AVC/HEVC video body."""
    value = int.from_bytes(body[at : at + 3], "big")
    return value - (1 << 24) if value & 0x800000 else value

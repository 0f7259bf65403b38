"""The shape of the stream an ingest has seen, read from its sequence headers: what a slate must match.

A decoder (the platform's, a viewer's) set up for one stream must be able to take the slate without a
restart: the same codec and profile, the same picture size, the same frame rate, and audio in the same
format and rate. All of it is in the AVC or HEVC decoder configuration (its SPS; hevc_shape.py reads
HEVC's) and the AAC AudioSpecificConfig; the frame rate, when the SPS carries no timing, comes from
onMetaData. Nothing is decoded, no I/O; not for judging whether a stream is healthy (agent/relay/frames.py
classifies frames). AV1, VP9 and other codecs get no slate: NoSlate says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Final

from agent.errors import ProtocolError
from agent.relay.bitstream import Bits, unescape
from agent.relay.frames import HeaderCache
from agent.relay.hevc_shape import (
    HEVC_SPS,
    parse_hevc_decoder_configuration,
    parse_hevc_sps,
    sequence_header_record,
)
from agent.rtmp import amf0
from agent.rtmp.flv import parse_avc_decoder_configuration

# The profiles an x264 slate can match, by profile_idc (ITU-T H.264 A.2), as x264 names them.
X264_PROFILES: Final = {66: "baseline", 77: "main", 100: "high"}
# The HEVC profiles an x265 slate can match, by general_profile_idc (ITU-T H.265 A.3), as x265 names them.
X265_PROFILES: Final = {1: "main", 2: "main10"}
_HIGH_PROFILES: Final = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
AAC_RATES: Final = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
AAC_LC: Final = 2
DEFAULT_FPS: Final = Fraction(30)
MAX_DIMENSION: Final = 8192  # an 8K picture; anything above is not a stream we can make a slate for


@dataclass(frozen=True, slots=True)
class VideoShape:
    codec: str  # "avc" or "hevc"
    profile_idc: int
    constraint_flags: int  # H.264's constraint_set flags; 0 for HEVC (x265 sets the profile's own)
    level_idc: int
    width: int
    height: int
    fps_num: int
    fps_den: int
    tier: int = 0  # HEVC's general_tier_flag: 1 for the High tier
    bit_depth: int = 8
    legacy_form: bool = False  # HEVC as FLV codec id 12, not enhanced RTMP's FourCC hvc1

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    @property
    def profile(self) -> str:
        return X265_PROFILES[self.profile_idc] if self.codec == "hevc" else X264_PROFILES[self.profile_idc]

    @property
    def level(self) -> str:
        """x264's and x265's level option: "4.1" for H.264's level_idc 41 (level 1b, idc 9 or 11 with flags,
        is taken as 1.1) and for HEVC's general_level_idc 123 (30 times the level)."""
        if self.codec == "hevc":
            return f"{self.level_idc // 30}.{self.level_idc % 30 // 3}"
        return f"{self.level_idc // 10}.{self.level_idc % 10}"


@dataclass(frozen=True, slots=True)
class AudioShape:
    codec: str  # "aac"
    object_type: int
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class StreamShape:
    video: VideoShape
    audio: AudioShape | None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StreamShape:
        data = json.loads(text)
        audio = data.get("audio")
        return cls(VideoShape(**data["video"]), AudioShape(**audio) if audio else None)

    def key(self, image_digest: str = "") -> str:
        """A file name for the slate of this shape (and this picture): the cache is per shape."""
        digest = hashlib.sha256((self.to_json() + image_digest).encode()).hexdigest()[:16]
        video = self.video
        return f"slate-{video.codec}-{video.profile}-{video.width}x{video.height}-{digest}"

    def describe(self) -> str:
        video, audio = self.video, self.audio
        fps = float(video.fps)
        codec = "HEVC" if video.codec == "hevc" else "H.264"
        tier = " high tier" if video.tier else ""
        text = f"{codec} {video.profile}{tier} {video.width}x{video.height} {fps:g} fps"
        if audio is not None:
            text += f", AAC {audio.sample_rate} Hz {audio.channels} ch"
        return text


class NoSlate(ValueError):
    """No slate can match this stream; the message says why, for the user."""


# ----------------------------------------------------------------------------------------- reading


def shape_of(headers: HeaderCache) -> StreamShape:
    """The shape of the stream whose headers are cached. Raises NoSlate when a slate cannot match it."""
    video_header = headers.video_sequence_header
    if video_header is None:
        raise NoSlate("the encoder sent no video sequence header")
    body = video_header.payload
    metadata_fps = _metadata(headers).get("framerate")
    hevc = sequence_header_record(body) if video_header.codec == "hevc" else None
    if hevc is not None:
        video = hevc_shape(hevc[0], metadata_fps, legacy_form=hevc[1])
    elif video_header.codec != "avc" or len(body) < 6 or body[0] & 0x80:
        raise NoSlate(f"the stream's video is {video_header.codec}; a slate can be made for H.264 and HEVC only")
    else:
        video = avc_shape(body[5:], metadata_fps)
    audio_header = headers.audio_sequence_header
    audio = None
    if audio_header is not None:
        if audio_header.codec != "aac" or len(audio_header.payload) < 4 or audio_header.payload[0] >> 4 != 10:
            raise NoSlate(f"the stream's audio is {audio_header.codec}; a slate can be made for AAC only")
        audio = aac_shape(audio_header.payload[2:])
    return StreamShape(video, audio)


def _metadata(headers: HeaderCache) -> dict[str, Any]:
    frame = headers.metadata
    if frame is None:
        return {}
    try:
        values = amf0.decode_all(frame.payload)
    except ProtocolError:
        return {}
    return next((value for value in values if isinstance(value, dict)), {})


def avc_shape(record: bytes, metadata_fps: object = None) -> VideoShape:
    try:
        config = parse_avc_decoder_configuration(record)
        if not config.sps:
            raise NoSlate("the H.264 sequence header holds no SPS")
        sps = parse_sps(config.sps[0])
    except (ProtocolError, IndexError) as exc:
        raise NoSlate(f"the H.264 sequence header cannot be read ({exc})") from exc
    if sps.profile_idc not in X264_PROFILES:
        raise NoSlate(f"H.264 profile {sps.profile_idc} (only baseline, main and high have a slate)")
    if sps.chroma_format_idc != 1 or sps.bit_depth != 8:
        raise NoSlate("the stream is not 8-bit 4:2:0 H.264")
    if not (16 <= sps.width <= MAX_DIMENSION and 16 <= sps.height <= MAX_DIMENSION) or not sps.frame_mbs_only:
        raise NoSlate(f"a {sps.width}x{sps.height} {'progressive' if sps.frame_mbs_only else 'interlaced'} picture")
    fps = _frame_rate(sps.fps, metadata_fps)
    return VideoShape(
        "avc",
        sps.profile_idc,
        sps.constraint_flags,
        sps.level_idc,
        sps.width,
        sps.height,
        fps.numerator,
        fps.denominator,
    )


def hevc_shape(record: bytes, metadata_fps: object = None, *, legacy_form: bool = False) -> VideoShape:
    """From an HEVCDecoderConfigurationRecord: what x265 can make, Main or Main 10, 4:2:0, progressive."""
    try:
        config = parse_hevc_decoder_configuration(record)
        sps_units = config.parameter_sets.get(HEVC_SPS, ())
        if not sps_units:
            raise NoSlate("the HEVC sequence header holds no SPS")
        sps = parse_hevc_sps(sps_units[0])
    except (ProtocolError, IndexError) as exc:
        raise NoSlate(f"the HEVC sequence header cannot be read ({exc})") from exc
    if sps.profile_idc not in X265_PROFILES:
        raise NoSlate(f"HEVC profile {sps.profile_idc} (only Main and Main 10 have a slate)")
    if sps.chroma_format_idc != 1 or sps.bit_depth != (10 if sps.profile_idc == 2 else 8):
        raise NoSlate(f"the stream is {sps.bit_depth}-bit HEVC with chroma format {sps.chroma_format_idc}, not 4:2:0")
    if not (16 <= sps.width <= MAX_DIMENSION and 16 <= sps.height <= MAX_DIMENSION):
        raise NoSlate(f"a {sps.width}x{sps.height} picture")
    fps = _frame_rate(sps.fps, metadata_fps)
    return VideoShape(
        "hevc",
        sps.profile_idc,
        0,
        sps.level_idc,
        sps.width,
        sps.height,
        fps.numerator,
        fps.denominator,
        tier=sps.tier,
        bit_depth=sps.bit_depth,
        legacy_form=legacy_form,
    )


def _frame_rate(sps_fps: Fraction | None, metadata_fps: object) -> Fraction:
    """The SPS's timing if it has one, else onMetaData's framerate, else 30."""
    fps = sps_fps
    if fps is None and isinstance(metadata_fps, int | float) and 1 <= metadata_fps <= 240:
        fps = Fraction(metadata_fps).limit_denominator(1001)
    return fps if fps is not None and 1 <= fps <= 240 else DEFAULT_FPS


def aac_shape(config: bytes) -> AudioShape:
    """From an AudioSpecificConfig (ISO 14496-3 1.6.2.1)."""
    bits = Bits(config)
    try:
        object_type = bits.u(5)
        if object_type == 31:
            object_type = 32 + bits.u(6)
        index = bits.u(4)
        rate = bits.u(24) if index == 15 else AAC_RATES[index] if index < len(AAC_RATES) else 0
        channels = bits.u(4)
    except IndexError as exc:
        raise NoSlate("the AAC sequence header is truncated") from exc
    if object_type != AAC_LC:
        raise NoSlate(f"AAC object type {object_type} (a slate is AAC-LC)")
    if rate not in AAC_RATES or not 1 <= channels <= 2:
        raise NoSlate(f"AAC at {rate} Hz with channel configuration {channels}")
    return AudioShape("aac", object_type, rate, channels)


# -------------------------------------------------------------------------------------------- SPS


@dataclass(frozen=True, slots=True)
class Sps:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth: int
    width: int
    height: int
    frame_mbs_only: bool
    fps: Fraction | None


def parse_sps(nal: bytes) -> Sps:
    """The fields of an H.264 SPS NAL unit (7.3.2.1.1 and E.1.1) a slate must match."""
    bits = Bits(unescape(nal[1:]))
    profile_idc, constraint_flags, level_idc = bits.u(8), bits.u(8), bits.u(8)
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc, bit_depth = 1, 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            bits.u(1)
        bit_depth = bits.ue() + 8
        bits.ue()  # bit_depth_chroma
        bits.u(1)
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)
    width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
    frame_mbs_only = bool(bits.u(1))
    if not frame_mbs_only:
        bits.u(1)
    bits.u(1)  # direct_8x8_inference_flag
    crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue()) if bits.u(1) else (0, 0, 0, 0)
    crop_x = 1 if chroma_format_idc in (0, 3) else 2
    crop_y = (1 if chroma_format_idc in (0, 2, 3) else 2) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    fps = _vui_fps(bits) if bits.u(1) else None
    return Sps(
        profile_idc, constraint_flags, level_idc, chroma_format_idc, bit_depth, width, height, frame_mbs_only, fps
    )


def _skip_scaling_list(bits: Bits, size: int) -> None:
    last, following = 8, 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def _vui_fps(bits: Bits) -> Fraction | None:
    try:
        if bits.u(1) and bits.u(8) == 255:  # aspect_ratio_info_present_flag, then Extended_SAR
            bits.u(32)
        if bits.u(1):  # overscan_info_present_flag
            bits.u(1)
        if bits.u(1):  # video_signal_type_present_flag
            bits.u(4)
            if bits.u(1):
                bits.u(24)
        if bits.u(1):  # chroma_loc_info_present_flag
            bits.ue()
            bits.ue()
        if not bits.u(1):  # timing_info_present_flag
            return None
        units, scale = bits.u(32), bits.u(32)
    except IndexError:
        return None
    if not units or not scale:
        return None
    return Fraction(scale, 2 * units)

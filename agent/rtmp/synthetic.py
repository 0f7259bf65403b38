"""A synthetic but valid H.264 + AAC stream for RTMP bandwidth tests: no encoder needed, any bitrate.

The video is real H.264 Baseline that any decoder accepts: an SPS/PPS built here, a grey IDR picture
(every macroblock Intra 16x16 DC with no residual) every N seconds, all-skip P pictures between, and
each frame padded to the byte budget of the target bitrate with filler-data NAL units (type 12),
which decoders discard. The audio is AAC-LC silence (max_sfb = 0) padded with fill elements to the
audio bitrate. The bitrate may change between frames (stepped tests). Not for anything but testing links.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from agent.rtmp.flv import aac_audio_body, avc_video_body

AAC_SAMPLES_PER_FRAME: Final = 1024
_SAMPLE_RATE_INDEX: Final = {
    96000: 0, 88200: 1, 64000: 2, 48000: 3, 44100: 4, 32000: 5,
    24000: 6, 22050: 7, 16000: 8, 12000: 9, 11025: 10, 8000: 11,
}  # fmt: skip
_FILLER_NAL_TYPE: Final = 12
_NAL_LENGTH = struct.Struct(">I")


class BitWriter:
    """MSB-first bit packing with the Exp-Golomb codes H.264 headers use."""

    def __init__(self) -> None:
        self._value = 0
        self._bits = 0

    def u(self, bits: int, value: int) -> None:
        self._value = (self._value << bits) | (value & ((1 << bits) - 1))
        self._bits += bits

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(2 * length - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def trailing_bits(self) -> None:
        """rbsp_trailing_bits: a stop bit then zeros to the byte boundary."""
        self.u(1, 1)
        self.align()

    def align(self) -> None:
        if self._bits % 8:
            self.u(8 - self._bits % 8, 0)

    def getvalue(self) -> bytes:
        if self._bits % 8:
            raise ValueError("bit string not byte aligned")
        return self._value.to_bytes(self._bits // 8, "big")


def emulation_prevention(rbsp: bytes) -> bytes:
    """Insert 0x03 wherever two zero bytes would be followed by a byte <= 3 (H.264 7.4.1)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _nal(nal_ref_idc: int, nal_type: int, rbsp: bytes) -> bytes:
    return bytes([(nal_ref_idc << 5) | nal_type]) + emulation_prevention(rbsp)


@dataclass(frozen=True)
class AvcParameters:
    """The SPS and PPS NAL units of the synthetic stream, and the macroblock grid they describe."""

    sps: bytes
    pps: bytes
    mb_width: int
    mb_height: int
    profile_idc: int = 66
    level_idc: int = 41


def build_parameter_sets(width: int, height: int, fps: float) -> AvcParameters:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError("width and height must be positive and even")
    mb_width, mb_height = math.ceil(width / 16), math.ceil(height / 16)
    sps = BitWriter()
    sps.u(8, 66)  # profile_idc: Baseline
    sps.u(8, 0xC0)  # constraint_set0_flag, constraint_set1_flag (constrained baseline)
    sps.u(8, 41)  # level_idc 4.1
    sps.ue(0)  # seq_parameter_set_id
    sps.ue(0)  # log2_max_frame_num_minus4: frame_num is 4 bits
    sps.ue(2)  # pic_order_cnt_type 2: output order = decoding order
    sps.ue(1)  # max_num_ref_frames
    sps.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    sps.ue(mb_width - 1)
    sps.ue(mb_height - 1)
    sps.u(1, 1)  # frame_mbs_only_flag
    sps.u(1, 1)  # direct_8x8_inference_flag
    crop_right, crop_bottom = (mb_width * 16 - width) // 2, (mb_height * 16 - height) // 2
    cropping = bool(crop_right or crop_bottom)
    sps.u(1, int(cropping))
    if cropping:
        for value in (0, crop_right, 0, crop_bottom):  # left, right, top, bottom in 2-pixel units (4:2:0)
            sps.ue(value)
    sps.u(1, 1)  # vui_parameters_present_flag: only to state the frame rate
    sps.u(1, 0)  # aspect_ratio_info_present_flag
    sps.u(1, 0)  # overscan_info_present_flag
    sps.u(1, 0)  # video_signal_type_present_flag
    sps.u(1, 0)  # chroma_loc_info_present_flag
    sps.u(1, 1)  # timing_info_present_flag
    sps.u(32, 1000)  # num_units_in_tick
    sps.u(32, round(fps * 2000))  # time_scale: two ticks per frame
    sps.u(1, 1)  # fixed_frame_rate_flag
    sps.u(1, 0)  # nal_hrd_parameters_present_flag
    sps.u(1, 0)  # vcl_hrd_parameters_present_flag
    sps.u(1, 0)  # pic_struct_present_flag
    sps.u(1, 0)  # bitstream_restriction_flag
    sps.trailing_bits()

    pps = BitWriter()
    pps.ue(0)  # pic_parameter_set_id
    pps.ue(0)  # seq_parameter_set_id
    pps.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    pps.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    pps.ue(0)  # num_slice_groups_minus1
    pps.ue(0)  # num_ref_idx_l0_default_active_minus1
    pps.ue(0)  # num_ref_idx_l1_default_active_minus1
    pps.u(1, 0)  # weighted_pred_flag
    pps.u(2, 0)  # weighted_bipred_idc
    pps.se(0)  # pic_init_qp_minus26
    pps.se(0)  # pic_init_qs_minus26
    pps.se(0)  # chroma_qp_index_offset
    pps.u(1, 1)  # deblocking_filter_control_present_flag
    pps.u(1, 0)  # constrained_intra_pred_flag
    pps.u(1, 0)  # redundant_pic_cnt_present_flag
    pps.trailing_bits()
    return AvcParameters(_nal(3, 7, sps.getvalue()), _nal(3, 8, pps.getvalue()), mb_width, mb_height)


def avc_decoder_configuration(params: AvcParameters) -> bytes:
    """AVCDecoderConfigurationRecord (ISO 14496-15) holding one SPS and one PPS, 4-byte NAL lengths."""
    return (
        bytes([1, params.sps[1], params.sps[2], params.sps[3], 0xFF, 0xE1])
        + struct.pack(">H", len(params.sps))
        + params.sps
        + b"\x01"
        + struct.pack(">H", len(params.pps))
        + params.pps
    )


def idr_slice(params: AvcParameters, idr_pic_id: int) -> bytes:
    """A grey IDR picture: every macroblock I_16x16, DC prediction, no residual."""
    bits = BitWriter()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (all slices of the picture)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num
    bits.ue(idr_pic_id)
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc: off
    for _ in range(params.mb_width * params.mb_height):
        bits.ue(3)  # mb_type I_16x16_2_0_0: DC prediction, no coded luma/chroma AC
        bits.ue(0)  # intra_chroma_pred_mode: DC
        bits.se(0)  # mb_qp_delta
        bits.u(1, 1)  # Intra16x16DCLevel coeff_token (nC 0): no coefficients
    bits.trailing_bits()
    return _nal(3, 5, bits.getvalue())


def skip_slice(params: AvcParameters, frame_num: int) -> bytes:
    """A P picture that repeats the previous one: every macroblock skipped."""
    bits = BitWriter()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(5)  # slice_type: P (all slices of the picture)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, frame_num)
    bits.u(1, 0)  # num_ref_idx_active_override_flag
    bits.u(1, 0)  # ref_pic_list_modification_flag_l0
    bits.u(1, 0)  # adaptive_ref_pic_marking_mode_flag: sliding window
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc
    bits.ue(params.mb_width * params.mb_height)  # mb_skip_run: the whole picture
    bits.trailing_bits()
    return _nal(2, 1, bits.getvalue())


def filler_nal(size: int) -> bytes:
    """A filler-data NAL unit of exactly `size` bytes (>= 2): header, 0xFF bytes, trailing bits."""
    if size < 2:
        raise ValueError("a filler NAL unit takes at least 2 bytes")
    return bytes([_FILLER_NAL_TYPE]) + b"\xff" * (size - 2) + b"\x80"


def audio_specific_config(sample_rate: int, channels: int) -> bytes:
    """AudioSpecificConfig for AAC-LC (object type 2)."""
    if sample_rate not in _SAMPLE_RATE_INDEX:
        raise ValueError(f"unsupported AAC sample rate {sample_rate}")
    if not 1 <= channels <= 2:
        raise ValueError("channels must be 1 or 2")
    return struct.pack(">H", (2 << 11) | (_SAMPLE_RATE_INDEX[sample_rate] << 7) | (channels << 3))


def silent_aac_frame(channels: int, size: int = 0) -> bytes:
    """One AAC-LC raw_data_block of silence (no spectral data), padded with fill elements towards `size` bytes."""
    bits = BitWriter()
    bits.u(3, 1 if channels == 2 else 0)  # CPE or SCE
    bits.u(4, 0)  # element_instance_tag
    if channels == 2:
        bits.u(1, 0)  # common_window
    for _ in range(channels):
        bits.u(8, 100)  # global_gain (irrelevant without spectral data)
        bits.u(1, 0)  # ics_reserved_bit
        bits.u(2, 0)  # window_sequence ONLY_LONG
        bits.u(1, 0)  # window_shape
        bits.u(6, 0)  # max_sfb = 0: no bands, so no section/scale factor/spectral data
        bits.u(1, 0)  # predictor_data_present
        bits.u(3, 0)  # pulse, tns, gain control: absent
    used_bits = 3 + 4 + (1 if channels == 2 else 0) + channels * 22 + 3
    budget = size * 8 - used_bits
    while budget >= 7 + 8:  # a fill element: ID_FIL, count, then count bytes (EXT_FILL)
        with_escape = budget >= 15 + 8 * 15
        count = min(269, (budget - (15 if with_escape else 7)) // 8) if with_escape else min(14, (budget - 7) // 8)
        bits.u(3, 6)  # ID_FIL
        if count >= 15:
            bits.u(4, 15)
            bits.u(8, count - 14)  # esc_count: cnt = 15 + esc_count - 1
        else:
            bits.u(4, count)
        bits.u(4, 0)  # extension_type EXT_FILL
        bits.u(4, 0)  # fill_nibble
        for _ in range(count - 1):
            bits.u(8, 0xA5)  # fill_byte 10100101
        budget -= (15 if count >= 15 else 7) + 8 * count
    bits.u(3, 7)  # ID_END
    bits.align()
    return bits.getvalue()


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """One RTMP media message: an FLV audio or video tag body and its timestamp."""

    kind: Literal["audio", "video"]
    timestamp_ms: int
    payload: bytes = field(repr=False)
    keyframe: bool = False


class SyntheticStream:
    """Produces the frames of the synthetic stream in timestamp order; the caller paces them in real time."""

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 360,
        fps: float = 30.0,
        video_bitrate_bps: int = 2_500_000,
        audio_bitrate_bps: int = 128_000,
        keyframe_interval_s: float = 2.0,
        audio_sample_rate: int = 48_000,
        audio_channels: int = 2,
    ) -> None:
        if fps <= 0 or keyframe_interval_s <= 0:
            raise ValueError("fps and keyframe_interval_s must be positive")
        self.width, self.height, self.fps = width, height, fps
        self.audio_sample_rate, self.audio_channels = audio_sample_rate, audio_channels
        self.audio_bitrate_bps = audio_bitrate_bps
        self.params = build_parameter_sets(width, height, fps)
        self._asc = audio_specific_config(audio_sample_rate, audio_channels)
        self._gop = max(1, round(keyframe_interval_s * fps))
        self._idr = [idr_slice(self.params, 0), idr_slice(self.params, 1)]
        self._skip = [skip_slice(self.params, n) for n in range(16)]
        self._audio_cache: dict[int, bytes] = {}
        self._pushed_back: MediaFrame | None = None
        self._video_index = 0
        self._audio_index = 0
        self._video_bytes = 0
        self._anchor_index = 0
        self._anchor_bytes = 0
        self.video_bitrate_bps = video_bitrate_bps
        self.set_video_bitrate(video_bitrate_bps)

    @property
    def video_bytes(self) -> int:
        """Video body bytes produced so far."""
        return self._video_bytes

    def set_video_bitrate(self, bitrate_bps: int) -> None:
        """From the next video frame on, pad frames to `bitrate_bps` (frames never shrink below a bare picture)."""
        if bitrate_bps < 0:
            raise ValueError("bitrate must not be negative")
        self.video_bitrate_bps = bitrate_bps
        self._anchor_index = self._video_index
        self._anchor_bytes = self._video_bytes

    def metadata(self) -> dict[str, Any]:
        """onMetaData values, as OBS sends them."""
        return {
            "duration": 0.0,
            "width": float(self.width),
            "height": float(self.height),
            "videocodecid": 7.0,
            "videodatarate": self.video_bitrate_bps / 1000,
            "framerate": float(self.fps),
            "audiocodecid": 10.0,
            "audiodatarate": self.audio_bitrate_bps / 1000,
            "audiosamplerate": float(self.audio_sample_rate),
            "audiosamplesize": 16.0,
            "audiochannels": float(self.audio_channels),
            "stereo": self.audio_channels == 2,
            "encoder": "streamhealth synthetic",
        }

    def sequence_headers(self) -> list[MediaFrame]:
        video = avc_video_body(avc_decoder_configuration(self.params), keyframe=True, sequence_header=True)
        audio = aac_audio_body(self._asc, sequence_header=True)
        return [MediaFrame("video", 0, video, keyframe=True), MediaFrame("audio", 0, audio)]

    def push_back(self, frame: MediaFrame) -> None:
        """Return the frame last taken with `next_frame`, unsent: the next call returns it again."""
        self._pushed_back = frame

    def _video_timestamp(self, index: int) -> int:
        return round(index * 1000 / self.fps)

    def _audio_timestamp(self, index: int) -> int:
        return index * AAC_SAMPLES_PER_FRAME * 1000 // self.audio_sample_rate

    def next_frame(self) -> MediaFrame:
        """The next frame in timestamp order (video first on a tie)."""
        if self._pushed_back is not None:
            frame, self._pushed_back = self._pushed_back, None
            return frame
        if self._video_timestamp(self._video_index) <= self._audio_timestamp(self._audio_index):
            return self._next_video()
        return self._next_audio()

    def _next_video(self) -> MediaFrame:
        index = self._video_index
        position = index % self._gop
        keyframe = position == 0
        picture = self._idr[(index // self._gop) % 2] if keyframe else self._skip[position % 16]
        nals = _NAL_LENGTH.pack(len(picture)) + picture
        bare_size = 5 + len(nals)
        due = self._anchor_bytes + round((index + 1 - self._anchor_index) * self.video_bitrate_bps / 8 / self.fps)
        padding = due - self._video_bytes - bare_size - 4  # the filler NAL's length prefix
        if padding >= 2:
            filler = filler_nal(padding)
            nals += _NAL_LENGTH.pack(len(filler)) + filler
        body = avc_video_body(nals, keyframe=keyframe)
        self._video_bytes += len(body)
        self._video_index += 1
        return MediaFrame("video", self._video_timestamp(index), body, keyframe=keyframe)

    def _next_audio(self) -> MediaFrame:
        index = self._audio_index
        start = self._audio_timestamp(index)
        frame_bytes = round(self.audio_bitrate_bps / 8 * AAC_SAMPLES_PER_FRAME / self.audio_sample_rate) - 2
        raw = self._audio_cache.get(frame_bytes)
        if raw is None:
            raw = self._audio_cache[frame_bytes] = silent_aac_frame(self.audio_channels, frame_bytes)
        self._audio_index += 1
        return MediaFrame("audio", start, aac_audio_body(raw))

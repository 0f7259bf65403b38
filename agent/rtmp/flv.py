"""FLV tags (the media format RTMP carries) and what a monitor or relay needs to know about a media body.

RTMP audio/video message bodies are FLV tag bodies; this module reads and writes FLV files/tags and
recognises sequence headers and keyframes (AVC, HEVC in both the legacy codec-id-12 form and the
Enhanced RTMP FourCC form, AAC) without decoding any media.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from agent.errors import ProtocolError

TAG_AUDIO: Final = 8
TAG_VIDEO: Final = 9
TAG_SCRIPT: Final = 18

VIDEO_CODEC_AVC: Final = 7
VIDEO_CODEC_HEVC_LEGACY: Final = 12  # not in Adobe's spec; what most Chinese CDNs and older OBS forks send
AUDIO_CODEC_AAC: Final = 10

FRAME_KEY: Final = 1
FRAME_INTER: Final = 2

AVC_SEQUENCE_HEADER: Final = 0
AVC_NALU: Final = 1
AAC_SEQUENCE_HEADER: Final = 0
AAC_RAW: Final = 1

# Enhanced RTMP (veovera spec) video packet types.
EX_SEQUENCE_START: Final = 0
EX_CODED_FRAMES: Final = 1
EX_CODED_FRAMES_X: Final = 3

FLV_HEADER_SIZE: Final = 9
TAG_HEADER_SIZE: Final = 11
MAX_TAG_SIZE: Final = 0xFFFFFF

_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class FlvTag:
    tag_type: int
    timestamp: int  # ms, 32-bit
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    codec: str  # "avc", "hevc", "av1", "vp9", or "unknown:<id>"
    keyframe: bool
    sequence_header: bool
    picture: bool = True  # carries coded picture data (not a sequence header, end of sequence or metadata)


def flv_header(*, has_audio: bool = True, has_video: bool = True) -> bytes:
    """The 9-byte file header plus the first PreviousTagSize (0)."""
    flags = (4 if has_audio else 0) | (1 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + _U32.pack(FLV_HEADER_SIZE) + _U32.pack(0)


def write_tag(tag: FlvTag) -> bytes:
    """One tag with its trailing PreviousTagSize."""
    size = len(tag.data)
    if size > MAX_TAG_SIZE:
        raise ValueError(f"FLV tags hold at most {MAX_TAG_SIZE} bytes")
    ts = tag.timestamp & 0xFFFFFFFF
    header = bytes([tag.tag_type]) + size.to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
    header += bytes([ts >> 24]) + b"\x00\x00\x00"
    return header + tag.data + _U32.pack(TAG_HEADER_SIZE + size)


class FlvReader:
    """Sans-I/O FLV file reader: feed bytes, get whole tags; waits when half a tag has arrived."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header_seen = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[FlvTag]:
        buf = self._buffer
        buf += data
        pos = 0
        if not self._header_seen:
            if len(buf) < FLV_HEADER_SIZE + 4:
                return []
            if buf[:3] != b"FLV":
                raise ProtocolError("not an FLV stream (no FLV signature)")
            header_size = _U32.unpack_from(buf, 5)[0]
            if header_size < FLV_HEADER_SIZE or header_size > 1024:
                raise ProtocolError(f"FLV header size {header_size} is not plausible")
            if len(buf) < header_size + 4:
                return []
            pos = header_size + 4
            self._header_seen = True
        tags: list[FlvTag] = []
        size = len(buf)
        while pos + TAG_HEADER_SIZE <= size:
            tag_type = buf[pos] & 0x1F
            data_size = _U32.unpack_from(buf, pos)[0] & 0xFFFFFF
            end = pos + TAG_HEADER_SIZE + data_size + 4
            if end > size:
                break
            timestamp = (_U32.unpack_from(buf, pos + 4)[0] >> 8) | (buf[pos + 7] << 24)
            tags.append(FlvTag(tag_type, timestamp, bytes(buf[pos + TAG_HEADER_SIZE : end - 4])))
            pos = end
        del buf[:pos]
        return tags


def read_flv(data: bytes) -> list[FlvTag]:
    """Every complete tag of an FLV file held in memory."""
    return FlvReader().receive_data(data)


# ---------------------------------------------------------------------------------------------- inspection

_FOURCC_NAMES: Final = {b"avc1": "avc", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9"}


def video_info(body: bytes) -> VideoInfo:
    """Codec, keyframe and sequence-header flags of a video message body. Raises ProtocolError if empty."""
    if not body:
        raise ProtocolError("empty video message")
    first = body[0]
    if first & 0x80:  # Enhanced RTMP: IsExHeader | FrameType(3) | PacketType(4) | FourCC
        frame_type = (first >> 4) & 0x07
        packet_type = first & 0x0F
        fourcc = bytes(body[1:5])
        codec = _FOURCC_NAMES.get(fourcc, f"unknown:{fourcc!r}")
        picture = packet_type in (EX_CODED_FRAMES, EX_CODED_FRAMES_X)
        return VideoInfo(codec, frame_type == FRAME_KEY, packet_type == EX_SEQUENCE_START, picture)
    frame_type = first >> 4
    codec_id = first & 0x0F
    codec = {VIDEO_CODEC_AVC: "avc", VIDEO_CODEC_HEVC_LEGACY: "hevc"}.get(codec_id, f"unknown:{codec_id}")
    if codec_id in (VIDEO_CODEC_AVC, VIDEO_CODEC_HEVC_LEGACY):
        packet_type = body[1] if len(body) > 1 else -1
        return VideoInfo(codec, frame_type == FRAME_KEY, packet_type == AVC_SEQUENCE_HEADER, packet_type == AVC_NALU)
    return VideoInfo(codec, frame_type == FRAME_KEY, False)


def is_keyframe(body: bytes) -> bool:
    """A keyframe carrying a picture (sequence headers and end-of-sequence markers are flagged as keyframes too)."""
    info = video_info(body)
    return info.keyframe and info.picture


def is_avc_sequence_header(body: bytes) -> bool:
    if not body:
        return False
    info = video_info(body)
    return info.codec == "avc" and info.sequence_header


def is_hevc_sequence_header(body: bytes) -> bool:
    if not body:
        return False
    info = video_info(body)
    return info.codec == "hevc" and info.sequence_header


def is_aac_sequence_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] >> 4 == AUDIO_CODEC_AAC and body[1] == AAC_SEQUENCE_HEADER


# ---------------------------------------------------------------------------------------------- building


def avc_video_body(nal_data: bytes, *, keyframe: bool, sequence_header: bool = False, composition_ms: int = 0) -> bytes:
    """A video body: FLV VideoTagHeader for AVC, then an AVCDecoderConfigurationRecord or length-prefixed NALUs."""
    frame_type = FRAME_KEY if keyframe or sequence_header else FRAME_INTER
    packet_type = AVC_SEQUENCE_HEADER if sequence_header else AVC_NALU
    header = bytes([(frame_type << 4) | VIDEO_CODEC_AVC, packet_type]) + (composition_ms & 0xFFFFFF).to_bytes(3, "big")
    return header + nal_data


def aac_audio_body(data: bytes, *, sequence_header: bool = False) -> bytes:
    """An audio body: AAC, 44 kHz flag (always, per spec), 16-bit, stereo flag (always, per spec)."""
    return bytes([(AUDIO_CODEC_AAC << 4) | 0x0F, AAC_SEQUENCE_HEADER if sequence_header else AAC_RAW]) + data


@dataclass(frozen=True, slots=True)
class AvcConfig:
    profile_idc: int
    level_idc: int
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]


def parse_avc_decoder_configuration(record: bytes) -> AvcConfig:
    """The AVCDecoderConfigurationRecord of an AVC sequence header (the body after its 5-byte tag header)."""
    try:
        if record[0] != 1:
            raise ProtocolError(f"AVCDecoderConfigurationRecord version {record[0]}, expected 1")
        profile, level = record[1], record[3]
        nal_length_size = (record[4] & 0x03) + 1
        pos = 5
        sets: list[tuple[bytes, ...]] = []
        for count_mask in (0x1F, 0xFF):
            count = record[pos] & count_mask
            pos += 1
            items = []
            for _ in range(count):
                length = int.from_bytes(record[pos : pos + 2], "big")
                item = record[pos + 2 : pos + 2 + length]
                if len(item) != length:
                    raise ProtocolError("AVCDecoderConfigurationRecord truncated")
                items.append(bytes(item))
                pos += 2 + length
            sets.append(tuple(items))
    except IndexError as exc:
        raise ProtocolError("AVCDecoderConfigurationRecord truncated") from exc
    return AvcConfig(profile, level, nal_length_size, sets[0], sets[1])

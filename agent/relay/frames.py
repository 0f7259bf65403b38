"""What the relay needs to know about each media message, read from its first bytes: kind, codec, droppability.

Nothing is decoded: a video body's FLV/E-RTMP header says key or inter frame and sequence header, and for
H.264/HEVC the first slice's NAL header says whether other pictures reference it (a non-reference picture
is "disposable": dropping it never breaks decoding) and whether it leads an open keyframe (references.py).
Not for parsing media; `agent/rtmp/flv.py` builds it.

Enhanced RTMP (veovera): bit 7 of the first video byte set means an ex-header; the frame type is then
`(b0 >> 4) & 7`, NOT the whole upper nibble (nginx-rtmp reads 8 + type and so thinks every E-RTMP keyframe
is droppable), the packet type is `b0 & 0x0F`, and a FourCC follows (after one more byte for Multitrack).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from agent.relay.references import (
    Role,
    StreamConfig,
    avc_config,
    avc_role,
    composition_offset_ms,
    hevc_config,
    hevc_role,
)
from agent.rtmp import messages as m

# FLV / E-RTMP video frame types.
FRAME_KEY: Final = 1
FRAME_INTER: Final = 2
FRAME_DISPOSABLE: Final = 3  # "disposable inter frame" (H.263 only in Adobe's spec)
FRAME_GENERATED_KEY: Final = 4
FRAME_COMMAND: Final = 5

# E-RTMP video packet types.
EX_SEQUENCE_START: Final = 0
EX_CODED_FRAMES: Final = 1
EX_SEQUENCE_END: Final = 2
EX_CODED_FRAMES_X: Final = 3
EX_METADATA: Final = 4
EX_MPEG2TS_SEQUENCE_START: Final = 5
EX_MULTITRACK: Final = 6
EX_MOD_EX: Final = 7
MULTITRACK_MANY_TRACKS_MANY_CODECS: Final = 2

# Legacy codec ids and AVC packet types.
CODEC_AVC: Final = 7
CODEC_HEVC_LEGACY: Final = 12
AVC_SEQUENCE_HEADER: Final = 0
AVC_NALU: Final = 1
AVC_END_OF_SEQUENCE: Final = 2

# Audio.
SOUND_AAC: Final = 10
SOUND_EX_HEADER: Final = 9
AAC_RAW: Final = 1
AUDIO_EX_SEQUENCE_START: Final = 0
AUDIO_EX_CODED_FRAMES: Final = 1
AUDIO_EX_MULTITRACK: Final = 5

_VIDEO_FOURCC: Final = {b"avc1": "avc", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9", b"vp08": "vp8"}
_AUDIO_FOURCC: Final = {b"Opus": "opus", b"fLaC": "flac", b"ac-3": "ac3", b"ec-3": "eac3", b".mp3": "mp3",
                        b"mp4a": "aac"}  # fmt: skip
_LEGACY_VIDEO: Final = {2: "h263", 3: "screen", 4: "vp6", 5: "vp6a", 6: "screen2", 7: "avc", 12: "hevc"}
_LEGACY_AUDIO: Final = {0: "pcm", 1: "adpcm", 2: "mp3", 3: "pcm", 4: "nellymoser", 5: "nellymoser",
                        6: "nellymoser", 7: "g711a", 8: "g711u", 10: "aac", 11: "speex", 14: "mp3", 15: "native"}  # fmt: skip


class FrameKind(enum.StrEnum):
    """What a message is to the drop policy. Only the three video picture kinds may ever be dropped."""

    VIDEO_KEY = "video_key"
    VIDEO_INTER = "video_inter"
    VIDEO_DISPOSABLE = "video_disposable"  # nothing references it
    # Comes after an open keyframe (HEVC CRA, H.264 I with a recovery point) in decoding order and before it
    # in display order, referencing pictures before it: a reference to the policy, dropped when the stream
    # resumes at that keyframe (HEVC RASL; in H.264, the pictures shown before the open keyframe).
    VIDEO_LEADING = "video_leading"
    VIDEO_OTHER = "video_other"  # end of sequence, E-RTMP metadata / command frames: tiny, kept
    AUDIO = "audio"
    SEQUENCE_HEADER = "sequence_header"  # AVC/HEVC/AV1 config, AAC AudioSpecificConfig: cached, never dropped
    METADATA = "metadata"  # @setDataFrame / onMetaData and other data messages

    @property
    def droppable(self) -> bool:
        return self in PICTURE_KINDS


PICTURE_KINDS: Final = frozenset(
    {FrameKind.VIDEO_KEY, FrameKind.VIDEO_INTER, FrameKind.VIDEO_DISPOSABLE, FrameKind.VIDEO_LEADING}
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One media or data message as received: forwarded with exactly these bytes."""

    type_id: int  # m.AUDIO, m.VIDEO or m.DATA_AMF0/3
    timestamp_ms: int
    payload: bytes = field(repr=False)
    kind: FrameKind
    codec: str
    received_at_s: float = 0.0  # monotonic clock when it arrived, for the latency figures

    @property
    def size_bytes(self) -> int:
        return len(self.payload)

    @property
    def is_video_picture(self) -> bool:
        return self.kind in PICTURE_KINDS


class FrameClassifier:
    """Classifies the frames of one stream, in order. Keeps what the sequence headers say (NAL length size,
    HEVC temporal sub-layers) and, after an open H.264 keyframe, its display time to tell its leading pictures."""

    def __init__(self) -> None:
        self.nal_length_size = 4  # what every encoder we know uses; updated from the sequence header
        self.hevc_highest_temporal_id = StreamConfig().highest_temporal_id
        self._open_key_pts_ms: int | None = None  # the last H.264 keyframe's, while it is open (not an IDR)

    def classify(self, type_id: int, payload: bytes, timestamp_ms: int = 0) -> tuple[FrameKind, str]:
        if type_id == m.VIDEO:
            return self.video(payload, timestamp_ms)
        if type_id == m.AUDIO:
            return audio_kind(payload)
        return FrameKind.METADATA, "amf"

    def video(self, body: bytes, timestamp_ms: int = 0) -> tuple[FrameKind, str]:
        if not body:
            return FrameKind.VIDEO_OTHER, "unknown"
        b0 = body[0]
        if b0 & 0x80:
            return self._ex_video(body, timestamp_ms)
        frame_type, codec_id = b0 >> 4, b0 & 0x0F
        codec = _LEGACY_VIDEO.get(codec_id, f"unknown:{codec_id}")
        if frame_type == FRAME_COMMAND:
            return FrameKind.VIDEO_OTHER, codec
        if codec_id in (CODEC_AVC, CODEC_HEVC_LEGACY):
            packet_type = body[1] if len(body) > 1 else -1
            if packet_type == AVC_SEQUENCE_HEADER:
                self._remember_config(codec, body[5:])
                return FrameKind.SEQUENCE_HEADER, codec
            if packet_type != AVC_NALU:
                return FrameKind.VIDEO_OTHER, codec
            # The display time matters only at a keyframe and after an open one: not read for the others.
            needs_pts = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY) or self._open_key_pts_ms is not None
            pts_ms = timestamp_ms + composition_offset_ms(body, 2) if needs_pts else timestamp_ms
            return self._picture(frame_type, codec, body, 5, pts_ms), codec
        return self._picture(frame_type, codec, body, -1, timestamp_ms), codec

    def _ex_video(self, body: bytes, timestamp_ms: int) -> tuple[FrameKind, str]:
        b0 = body[0]
        frame_type, packet_type = (b0 >> 4) & 0x07, b0 & 0x0F
        fourcc_at = 1
        if packet_type == EX_MULTITRACK and len(body) > 1:
            multitrack_type, packet_type = body[1] >> 4, body[1] & 0x0F
            fourcc_at = 2
            if multitrack_type == MULTITRACK_MANY_TRACKS_MANY_CODECS:
                return self._ex_kind(frame_type, packet_type, "multi", body, -1, 0), "multi"
        fourcc = bytes(body[fourcc_at : fourcc_at + 4])
        codec = _VIDEO_FOURCC.get(fourcc, f"unknown:{fourcc.decode('latin-1')}")
        payload_at = fourcc_at + 4
        pts_ms = timestamp_ms
        if packet_type == EX_CODED_FRAMES and codec in ("avc", "hevc") and fourcc_at == 1:
            pts_ms += composition_offset_ms(body, payload_at)
            payload_at += 3  # composition time offset
        elif fourcc_at != 1 or packet_type not in (EX_CODED_FRAMES, EX_CODED_FRAMES_X):
            payload_at = -1  # multitrack bodies carry a track id (and size) first: do not look at NAL units
        if packet_type == EX_SEQUENCE_START and fourcc_at == 1:
            self._remember_config(codec, body[payload_at:] if payload_at > 0 else body[5:])
        return self._ex_kind(frame_type, packet_type, codec, body, payload_at, pts_ms), codec

    def _ex_kind(
        self, frame_type: int, packet_type: int, codec: str, body: bytes, payload_at: int, pts_ms: int
    ) -> FrameKind:
        if frame_type == FRAME_COMMAND or packet_type in (EX_METADATA, EX_SEQUENCE_END, EX_MOD_EX):
            return FrameKind.VIDEO_OTHER if packet_type != EX_METADATA else FrameKind.METADATA
        if packet_type in (EX_SEQUENCE_START, EX_MPEG2TS_SEQUENCE_START):
            return FrameKind.SEQUENCE_HEADER
        if packet_type in (EX_CODED_FRAMES, EX_CODED_FRAMES_X):
            return self._picture(frame_type, codec, body, payload_at, pts_ms)
        return FrameKind.VIDEO_OTHER

    def _picture(self, frame_type: int, codec: str, body: bytes, nal_at: int, pts_ms: int) -> FrameKind:
        """`pts_ms`: the picture's display time (timestamp plus composition offset), for H.264 leading pictures."""
        key = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
        if nal_at <= 0 or codec not in ("avc", "hevc"):
            if key:
                return FrameKind.VIDEO_KEY
            return FrameKind.VIDEO_DISPOSABLE if frame_type == FRAME_DISPOSABLE else FrameKind.VIDEO_INTER
        if codec == "hevc":
            role = hevc_role(body, nal_at, StreamConfig(self.nal_length_size, self.hevc_highest_temporal_id))
            if key:
                return FrameKind.VIDEO_KEY
            if role is Role.LEADING:
                return FrameKind.VIDEO_LEADING
            return FrameKind.VIDEO_DISPOSABLE if role is Role.NON_REFERENCE else FrameKind.VIDEO_INTER
        role = avc_role(body, nal_at, self.nal_length_size)
        # H.264 says nothing in the NAL header about leading pictures: after an open keyframe (an I picture the
        # encoder flags as a keyframe, not an IDR), those shown before it are its leading pictures.
        if key:
            self._open_key_pts_ms = pts_ms if role in (Role.REFERENCE, Role.NON_REFERENCE) else None
            return FrameKind.VIDEO_KEY
        open_key_pts_ms = self._open_key_pts_ms
        if open_key_pts_ms is not None:
            if (pts_ms - open_key_pts_ms) & 0x80000000:  # earlier, on the 32-bit RTMP clock
                return FrameKind.VIDEO_LEADING
            self._open_key_pts_ms = None  # the first trailing picture: no leading picture comes after it
        if role is Role.NON_REFERENCE or frame_type == FRAME_DISPOSABLE:
            return FrameKind.VIDEO_DISPOSABLE
        return FrameKind.VIDEO_INTER

    def _remember_config(self, codec: str, record: bytes) -> None:
        config = avc_config(record) if codec == "avc" else hevc_config(record) if codec == "hevc" else None
        if config is None:
            return
        self.nal_length_size = config.nal_length_size
        if codec == "hevc":
            self.hevc_highest_temporal_id = config.highest_temporal_id


def never_cached(type_id: int, body: bytes) -> bool:
    """Whether a media message is surely neither a sequence header nor metadata (what `HeaderCache` keeps
    and what the classifier learns the NAL length size from), judged from its first two bytes. The relay's
    fast lane forwards only such messages and classifies them later; False sends a message down the path
    that classifies at once, so False is the answer whenever in doubt."""
    if len(body) < 2:
        return False
    b0 = body[0]
    if type_id == m.VIDEO:
        if b0 & 0x80:  # E-RTMP: only coded frames (a multitrack body is judged on the slow path)
            return (b0 & 0x0F) in (EX_CODED_FRAMES, EX_CODED_FRAMES_X)
        if (b0 & 0x0F) in (CODEC_AVC, CODEC_HEVC_LEGACY):
            return body[1] == AVC_NALU
        return True  # the older codecs have no sequence headers
    if type_id == m.AUDIO:
        sound_format = b0 >> 4
        if sound_format == SOUND_AAC:
            return body[1] == AAC_RAW
        if sound_format == SOUND_EX_HEADER:
            return (b0 & 0x0F) == AUDIO_EX_CODED_FRAMES
        return True
    return False


def composition_offset_of(body: bytes) -> int:
    """A video picture's display time minus its timestamp (the composition time offset, ms): read where an
    H.264 or HEVC body carries one (the legacy codec ids and E-RTMP CodedFrames), 0 elsewhere. With
    B-frames a picture is shown after pictures sent later: its offset says by how much."""
    if len(body) < 5:
        return 0
    b0 = body[0]
    if b0 & 0x80:  # E-RTMP: the offset follows the FourCC in CodedFrames (multitrack bodies: not read)
        if (b0 & 0x0F) == EX_CODED_FRAMES and bytes(body[1:5]) in (b"avc1", b"hvc1") and len(body) >= 8:
            return composition_offset_ms(body, 5)
        return 0
    if (b0 & 0x0F) in (CODEC_AVC, CODEC_HEVC_LEGACY) and body[1] == AVC_NALU:
        return composition_offset_ms(body, 2)
    return 0


def audio_kind(body: bytes) -> tuple[FrameKind, str]:
    if not body:
        return FrameKind.AUDIO, "unknown"
    sound_format = body[0] >> 4
    if sound_format == SOUND_EX_HEADER:
        packet_type = body[0] & 0x0F
        fourcc_at = 2 if packet_type == AUDIO_EX_MULTITRACK else 1
        if packet_type == AUDIO_EX_MULTITRACK and len(body) > 1:
            packet_type = body[1] & 0x0F
        fourcc = bytes(body[fourcc_at : fourcc_at + 4])
        codec = _AUDIO_FOURCC.get(fourcc, f"unknown:{fourcc.decode('latin-1')}")
        kind = FrameKind.SEQUENCE_HEADER if packet_type == AUDIO_EX_SEQUENCE_START else FrameKind.AUDIO
        return kind, codec
    codec = _LEGACY_AUDIO.get(sound_format, f"unknown:{sound_format}")
    if sound_format == SOUND_AAC and len(body) > 1 and body[1] == 0:
        return FrameKind.SEQUENCE_HEADER, codec
    return FrameKind.AUDIO, codec


class HeaderCache:
    """The stream's latest metadata and sequence headers: what every new ingest connection must get first."""

    def __init__(self) -> None:
        self.metadata: Frame | None = None
        self.video_sequence_header: Frame | None = None
        self.audio_sequence_header: Frame | None = None

    def update(self, frame: Frame) -> None:
        if frame.kind is FrameKind.SEQUENCE_HEADER:
            if frame.type_id == m.VIDEO:
                self.video_sequence_header = frame
            else:
                self.audio_sequence_header = frame
        elif frame.kind is FrameKind.METADATA and frame.type_id != m.VIDEO and b"onMetaData" in frame.payload[:40]:
            self.metadata = frame

    def frames(self) -> list[Frame]:
        """In the order encoders send them: metadata, video sequence header, audio sequence header."""
        candidates = (self.metadata, self.video_sequence_header, self.audio_sequence_header)
        return [frame for frame in candidates if frame is not None]

    def clear(self) -> None:
        self.metadata = self.video_sequence_header = self.audio_sequence_header = None

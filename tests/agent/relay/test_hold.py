"""The slate player and the switch back, without I/O: timestamps continue, in order, at the stream's rates."""

from __future__ import annotations

import itertools

from agent.relay.frames import Frame, FrameKind
from agent.relay.hold import SlatePlayer, SwitchBack, with_parameter_sets
from agent.relay.protection import Protection
from agent.relay.slate import Slate
from agent.relay.stream_shape import AudioShape, StreamShape, VideoShape
from agent.rtmp import messages as m
from agent.rtmp.flv import parse_avc_decoder_configuration

SPS = bytes.fromhex("6764001facd9405005bb011000000300100000030300f18319a0")
PPS = bytes.fromhex("68ebe3cb22c0")
AVC_HEADER = bytes.fromhex("1700000000") + bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1]) + len(SPS).to_bytes(2, "big") + SPS
AVC_HEADER += bytes([1]) + len(PPS).to_bytes(2, "big") + PPS


def slate(fps: tuple[int, int] = (30, 1), rate: int | None = 48000, gop: int = 60) -> Slate:
    shape = StreamShape(VideoShape("avc", 100, 0, 31, 1280, 720, *fps), AudioShape("aac", 2, rate, 2) if rate else None)
    pictures = tuple(b"\x17\x01\x00\x00\x00key" if i == 0 else b"\x27\x01\x00\x00\x00p" for i in range(gop))
    kinds = tuple(FrameKind.VIDEO_KEY if i == 0 else FrameKind.VIDEO_INTER for i in range(gop))
    audio_header = b"\xaf\x00\x11\x90" if rate else None
    return Slate(shape, AVC_HEADER, audio_header, pictures, kinds, b"\xaf\x01silence" if rate else None)


def play(player: SlatePlayer, seconds: float, step_s: float = 0.05) -> list[Frame]:
    frames: list[Frame] = []
    for step in range(round(seconds / step_s) + 1):
        frames += player.due(player.started_at_s + step * step_s)
    return frames


def test_the_slate_continues_from_the_given_timestamp_at_the_streams_frame_and_sample_rates() -> None:
    player = SlatePlayer(slate(), start_ms=90_000, started_at_s=1000.0)
    opening = player.opening(1000.0)
    assert [(f.type_id, f.kind, f.timestamp_ms) for f in opening] == [
        (m.VIDEO, FrameKind.SEQUENCE_HEADER, 90_000),
        (m.AUDIO, FrameKind.SEQUENCE_HEADER, 90_000),
    ]
    frames = play(player, 4.0)
    video = [f for f in frames if f.type_id == m.VIDEO]
    audio = [f for f in frames if f.type_id == m.AUDIO]
    assert video[0].timestamp_ms == 90_000 and video[0].kind is FrameKind.VIDEO_KEY
    assert len(video) == 121 and len(audio) == 188  # 4 s at 30 fps (and the one at 0), at 48000/1024
    assert [f.timestamp_ms - 90_000 for f in video[:4]] == [0, 33, 67, 100]
    assert [f.timestamp_ms - 90_000 for f in audio[:4]] == [0, 21, 43, 64]
    # A keyframe every GOP (2 s), then the GOP again.
    assert [i for i, f in enumerate(video) if f.kind is FrameKind.VIDEO_KEY] == [0, 60, 120]
    stamps = [f.timestamp_ms for f in frames]
    assert stamps == sorted(stamps)  # interleaved in timestamp order, as an encoder sends
    assert player.end_ms() > stamps[-1]


def test_a_player_hands_out_only_what_is_due_and_says_when_the_next_frame_is() -> None:
    player = SlatePlayer(slate(rate=None), start_ms=0, started_at_s=50.0)
    assert [f.timestamp_ms for f in player.due(50.0)] == [0]
    assert player.due(50.02) == []
    assert abs(player.next_due_s() - 50.0333) < 0.001
    assert [f.timestamp_ms for f in player.due(50.1)] == [33, 67, 100]


def test_ntsc_rates_keep_their_timestamps_exact_over_an_hour() -> None:
    player = SlatePlayer(slate(fps=(30000, 1001), rate=44100), start_ms=0, started_at_s=0.0)
    frames = player.due(3600.0)
    video = [f.timestamp_ms for f in frames if f.type_id == m.VIDEO]
    audio = [f.timestamp_ms for f in frames if f.type_id == m.AUDIO]
    assert video[-1] == round((len(video) - 1) * 1001 / 30)  # no drift from rounding each step
    assert audio[-1] == round((len(audio) - 1) * 1024 * 1000 / 44100)
    assert max(b - a for a, b in itertools.pairwise(video)) <= 34


def test_timestamps_wrap_on_the_32_bit_rtmp_clock() -> None:
    player = SlatePlayer(slate(rate=None), start_ms=0xFFFFFFFF - 40, started_at_s=0.0)
    assert [f.timestamp_ms for f in player.due(0.1)] == [0xFFFFFFFF - 40, 0xFFFFFFFF - 7, 26, 59]


def _frame(kind: FrameKind, ts: int, type_id: int = m.VIDEO, payload: bytes = b"\x27\x01\x00\x00\x00x") -> Frame:
    return Frame(type_id, ts, payload, kind, "avc" if type_id == m.VIDEO else "aac")


def test_a_returning_encoder_goes_on_the_air_at_its_first_keyframe_with_its_headers_restamped() -> None:
    switch = SwitchBack()
    continue_at = 200_000
    assert switch.offer(_frame(FrameKind.METADATA, 0, m.DATA_AMF0, b"\x02\x00\x0aonMetaData"), continue_at) is None
    assert switch.offer(_frame(FrameKind.SEQUENCE_HEADER, 0, payload=AVC_HEADER), continue_at) is None
    assert switch.offer(_frame(FrameKind.SEQUENCE_HEADER, 0, m.AUDIO, b"\xaf\x00\x11\x90"), continue_at) is None
    assert switch.offer(_frame(FrameKind.AUDIO, 5, m.AUDIO), continue_at) is None
    assert switch.offer(_frame(FrameKind.VIDEO_INTER, 10), continue_at) is None  # no reference on the air
    back = switch.offer(_frame(FrameKind.VIDEO_KEY, 40, payload=b"\x17\x01\x00\x00\x00slice"), continue_at)
    assert back is not None
    frames, offset = back
    assert [f.kind for f in frames] == [
        FrameKind.METADATA,
        FrameKind.SEQUENCE_HEADER,
        FrameKind.SEQUENCE_HEADER,
        FrameKind.VIDEO_KEY,
    ]
    assert {f.timestamp_ms for f in frames} == {continue_at}
    assert offset == continue_at - 40 and switch.frames_dropped == 2
    # The keyframe carries its SPS and PPS in-band, ahead of its slice.
    key = frames[-1].payload
    assert key.startswith(b"\x17\x01\x00\x00\x00" + len(SPS).to_bytes(4, "big") + SPS)
    assert key.endswith(len(PPS).to_bytes(4, "big") + PPS + b"slice")


def test_an_encoder_whose_clock_runs_ahead_of_the_slate_gets_a_negative_offset_mod_2_32() -> None:
    back = SwitchBack().offer(_frame(FrameKind.VIDEO_KEY, 500_000, payload=b"\x17\x01\x00\x00\x00k"), 1000)
    assert back is not None
    frames, offset = back
    assert frames[-1].timestamp_ms == 1000 and (500_000 + offset) & 0xFFFFFFFF == 1000


def test_parameter_sets_go_in_band_only_on_a_legacy_avc_keyframe() -> None:
    config = parse_avc_decoder_configuration(AVC_HEADER[5:])
    assert config.sps == (SPS,)
    assert with_parameter_sets(b"\x27\x01\x00\x00\x00p", AVC_HEADER) == b"\x27\x01\x00\x00\x00p"
    assert with_parameter_sets(b"\x17\x01\x00\x00\x00k", b"\x17\x00\x00") == b"\x17\x01\x00\x00\x00k"
    hevc = b"\x91hvc1\x00\x00\x00k"
    assert with_parameter_sets(hevc, AVC_HEADER) == hevc


def test_the_slate_is_shown_a_frame_after_the_latest_picture_the_encoder_sent() -> None:
    at_30 = slate()
    # OBS (x264, 2 B-frames): its last P-frame at 8266 ms is shown at 8399 ms, after the last timestamps.
    assert Protection.continue_at_ms(at_30, [8266, 8258], 8399) == 8399 + 33
    # Without B-frames the timestamps rule: three frame times after the last one.
    assert Protection.continue_at_ms(at_30, [8266, 8258], 8266) == 8266 + 100
    assert Protection.continue_at_ms(at_30, [8266, None], None) == 8266 + 100
    assert Protection.continue_at_ms(at_30, [None, None], None) == 100
    # Across the 32-bit RTMP clock's wrap, the later time is the one past it.
    assert Protection.continue_at_ms(at_30, [2**32 - 40, 2**32 - 50], 100) == 133
    assert Protection.continue_at_ms(at_30, [2**32 - 40, 2**32 - 50], 2**32 - 10) == 60

"""HEVC slates: the shape read from real x265 sequence headers, and x265 slates that match it and decode.

The sequence headers are made at test time by PyAV's x265 (the FLV form OBS 29.1+ sends: enhanced RTMP,
FourCC hvc1); FFmpeg 8's own parser (PyAV's, in tests/peers/pyav_check.py) is the independent reader the
shapes and slates are checked against. The system's ffmpeg 5.1 cannot read HEVC in FLV.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from agent.relay.frames import FrameKind
from agent.relay.hevc_shape import (
    nal_units_at,
    parse_hevc_decoder_configuration,
    parse_hevc_sps,
    sequence_header_record,
    to_legacy_form,
)
from agent.relay.hold import SlatePlayer, with_parameter_sets
from agent.relay.slate import SlateCache
from agent.relay.stream_shape import AudioShape, NoSlate, StreamShape, VideoShape, shape_of
from agent.rtmp import flv
from tests.agent.relay.test_slate import headers_of

av = pytest.importorskip("av", reason="needs PyAV (uv sync)")
if "libx265" not in av.codecs_available:
    pytest.skip("PyAV's FFmpeg has no libx265", allow_module_level=True)

from tests.peers.hevc_publisher import encode_file  # noqa: E402 - needs av

FFMPEG_PROFILES = {"main": "Main", "main10": "Main 10"}


def pyav_check(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.peers.pyav_check", str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report: dict[str, object] = json.loads(out.stdout)
    return report


def x265_file(tmp_path: Path, size: str, fps: int | str, pix_fmt: str = "yuv420p", params: str = "") -> Path:
    path = tmp_path / "x265.flv"
    rate = Fraction(fps)
    profile = "main10" if pix_fmt == "yuv420p10le" else "main444-8" if pix_fmt == "yuv444p" else "main"
    encode_file(str(path), 10, size, rate, pix_fmt, profile, params or "keyint=30")
    return path


def nal_types(body: bytes) -> list[int]:
    at, types = nal_units_at(body), []
    while at is not None and at + 5 < len(body):
        length = int.from_bytes(body[at : at + 4], "big")
        types.append((body[at + 4] >> 1) & 0x3F)
        at += 4 + length
    return types


@pytest.mark.parametrize(
    ("size", "fps", "pix_fmt", "params"),
    [
        ("1280x720", 30, "yuv420p", ""),
        ("426x240", 25, "yuv420p", ""),  # 426 is no multiple of 8: a conformance window crops the picture
        ("1920x1080", 60, "yuv420p10le", ""),  # Main 10
        ("854x480", "30000/1001", "yuv420p", ""),
        ("640x360", 30, "yuv420p", "temporal-layers=1"),  # sub-layers in profile_tier_level
        ("1920x1080", 30, "yuv420p", "level-idc=5:high-tier=1"),
        ("640x360", 25, "yuv420p", "vui-timing-info=0"),  # no timing in the SPS: onMetaData's framerate
    ],
)
def test_the_shape_of_an_x265_stream_is_read_from_its_sequence_headers_as_ffmpeg_reads_it(
    size: str, fps: int | str, pix_fmt: str, params: str, tmp_path: Path
) -> None:
    path = x265_file(tmp_path, size, fps, pix_fmt, params)
    video = shape_of(headers_of(flv.read_flv(path.read_bytes()))).video
    ffmpeg = pyav_check(path)["video"]
    assert isinstance(ffmpeg, dict)
    width, height = map(int, size.split("x"))
    assert (
        (video.codec, video.width, video.height)
        == ("hevc", width, height)
        == ("hevc", ffmpeg["width"], ffmpeg["height"])
    )
    assert FFMPEG_PROFILES[video.profile] == ffmpeg["profile"]
    assert video.bit_depth == (10 if pix_fmt == "yuv420p10le" else 8)
    assert video.fps == Fraction(fps)
    assert video.tier == ("high-tier=1" in params)
    record = sequence_header_record(flv.read_flv(path.read_bytes())[1].data)
    assert record is not None and not record[1]
    assert video.level_idc == record[0][12]  # the record's general_level_idc, copied from the SPS's
    # The frame rate came from the SPS's VUI, not onMetaData, unless x265 was told to leave timing out.
    sps = parse_hevc_sps(parse_hevc_decoder_configuration(record[0]).parameter_sets[33][0])
    assert sps.fps == (None if "vui-timing-info=0" in params else Fraction(fps))


def test_no_slate_for_hevc_x265_cannot_match_and_the_reason_says_which(tmp_path: Path) -> None:
    path = x265_file(tmp_path, "640x360", 30, "yuv444p")
    with pytest.raises(NoSlate, match="HEVC profile 4"):
        shape_of(headers_of(flv.read_flv(path.read_bytes())))


HEVC_SHAPES = [
    StreamShape(VideoShape("hevc", 1, 0, 93, 1280, 720, 30, 1), AudioShape("aac", 2, 48000, 2)),
    StreamShape(VideoShape("hevc", 2, 0, 123, 1920, 1080, 60, 1, bit_depth=10), AudioShape("aac", 2, 44100, 2)),
    StreamShape(VideoShape("hevc", 1, 0, 150, 1920, 1080, 30000, 1001, tier=1), None),
    StreamShape(VideoShape("hevc", 1, 0, 90, 854, 480, 25, 1, legacy_form=True), AudioShape("aac", 2, 48000, 1)),
]


@pytest.mark.parametrize(
    "shape", HEVC_SHAPES, ids=lambda shape: shape.describe() + (" legacy" * shape.video.legacy_form)
)
async def test_an_hevc_slate_has_the_shape_of_the_stream_it_stands_in_for_and_decodes_cleanly(
    shape: StreamShape, tmp_path: Path
) -> None:
    cache = SlateCache(tmp_path)
    slate = await cache.get(shape, timeout_s=120)
    assert slate is not None, cache.failures
    path = cache.path(shape)
    assert shape_of(headers_of(flv.read_flv(path.read_bytes()))) == shape
    report = pyav_check(path)
    assert report["errors"] == []
    video = report["video"]
    assert isinstance(video, dict)
    assert (video["codec"], video["width"], video["height"]) == ("hevc", shape.video.width, shape.video.height)
    assert video["profile"] == FFMPEG_PROFILES[shape.video.profile]
    assert video["pix_fmt"] == ("yuv420p10le" if shape.video.bit_depth == 10 else "yuv420p")
    assert Fraction(str(video["fps"])) == shape.video.fps
    assert ("audio" in report) == (shape.audio is not None)
    # One GOP, the keyframe first and only first, with VPS, SPS and PPS in band; in the stream's FLV form.
    assert len(slate.gop) == round(2 * shape.video.fps)
    assert slate.gop_kinds[0] is FrameKind.VIDEO_KEY and FrameKind.VIDEO_KEY not in slate.gop_kinds[1:]
    assert nal_types(slate.gop[0])[:3] == [32, 33, 34]
    legacy = shape.video.legacy_form
    assert all((body[0] & 0x0F == 12) == legacy and bool(body[0] & 0x80) != legacy for body in slate.gop)
    assert slate.size_bytes < 200_000
    # The player sends it as HEVC.
    player = SlatePlayer(slate, 1000, 0.0)
    assert {frame.codec for frame in player.opening(0.0) + player.due(0.5) if frame.type_id == 9} == {"hevc"}


@pytest.mark.parametrize("legacy", [False, True], ids=["hvc1", "codec id 12"])
def test_a_returning_hevc_encoders_first_keyframe_gets_its_vps_sps_and_pps_in_band(
    legacy: bool, tmp_path: Path
) -> None:
    tags = [tag for tag in flv.read_flv(x265_file(tmp_path, "640x360", 30).read_bytes()) if tag.tag_type == 9]
    bodies = [to_legacy_form(tag.data) if legacy else tag.data for tag in tags]
    header = next(body for body in bodies if sequence_header_record(body) is not None)
    keyframe = next(body for body in bodies if nal_units_at(body) is not None and (body[0] >> 4) & 7 == 1)
    inter = next(body for body in bodies if nal_units_at(body) is not None and (body[0] >> 4) & 7 == 2)
    assert 32 not in nal_types(keyframe)  # x265 by default sends its parameter sets in the record only
    record = sequence_header_record(header)
    assert record is not None and record[1] == legacy
    config = parse_hevc_decoder_configuration(record[0])
    joined = with_parameter_sets(keyframe, header)
    assert nal_types(joined) == [32, 33, 34, *nal_types(keyframe)]
    assert config.in_band()[1] in joined and joined.endswith(keyframe[nal_units_at(keyframe) :])
    assert with_parameter_sets(inter, header) == inter


async def test_a_shape_x265_refuses_leaves_no_slate_and_the_reason_names_the_encoder_and_level(tmp_path: Path) -> None:
    """Level 2.1 is too low for 854x480 at 25 fps: x265 will not encode it, and says why in one line."""
    shape = StreamShape(VideoShape("hevc", 1, 0, 63, 854, 480, 25, 1), None)
    cache = SlateCache(tmp_path)
    assert await cache.get(shape, timeout_s=120) is None
    assert "libx265 cannot encode HEVC main 854x480 25 fps at level 2.1" in cache.failures[shape]
    assert await asyncio.to_thread(os.listdir, tmp_path) == []  # no slate file, no partial one

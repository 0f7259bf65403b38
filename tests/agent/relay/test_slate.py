"""Slates per stream shape: made by PyAV in a subprocess, matching what the ingest has seen, decodable."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from agent.relay.frames import Frame, FrameClassifier, FrameKind, HeaderCache
from agent.relay.slate import SlateCache, load_slate
from agent.relay.stream_shape import AudioShape, NoSlate, StreamShape, VideoShape, aac_shape, shape_of
from agent.rtmp import flv
from agent.rtmp import messages as m

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg (apt install ffmpeg)")


def headers_of(tags: list[flv.FlvTag]) -> HeaderCache:
    """The HeaderCache the relay would hold after these tags (an FLV file's, in order)."""
    headers, classifier = HeaderCache(), FrameClassifier()
    for tag in tags:
        type_id = {flv.TAG_VIDEO: m.VIDEO, flv.TAG_AUDIO: m.AUDIO}.get(tag.tag_type, m.DATA_AMF0)
        kind, codec = classifier.classify(type_id, tag.data)
        headers.update(Frame(type_id, tag.timestamp, tag.data, kind, codec))
    return headers


def probe(path: Path) -> dict[str, dict[str, object]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return {stream["codec_type"]: stream for stream in json.loads(out)["streams"]}


SHAPES = [
    StreamShape(VideoShape("avc", 66, 0xC0, 30, 640, 360, 30, 1), AudioShape("aac", 2, 44100, 1)),
    StreamShape(VideoShape("avc", 77, 0x40, 32, 1280, 720, 60, 1), AudioShape("aac", 2, 48000, 2)),
    StreamShape(VideoShape("avc", 100, 0, 40, 1920, 1080, 30000, 1001), AudioShape("aac", 2, 32000, 2)),
    StreamShape(VideoShape("avc", 100, 0, 31, 854, 480, 25, 1), None),
]


@needs_ffmpeg
@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.describe())
async def test_a_slate_has_the_shape_of_the_stream_it_stands_in_for_and_decodes_cleanly(
    shape: StreamShape, tmp_path: Path
) -> None:
    cache = SlateCache(tmp_path)
    slate = await cache.get(shape, timeout_s=60)
    assert slate is not None, cache.failures
    path = cache.path(shape)
    # Read back by our own parser (the SPS, the AudioSpecificConfig) ...
    assert shape_of(headers_of(flv.read_flv(path.read_bytes()))) == shape
    # ... and by FFmpeg's.
    streams = probe(path)
    video = streams["video"]
    assert (video["width"], video["height"]) == (shape.video.width, shape.video.height)
    assert str(video["profile"]).lower().replace("constrained ", "") == shape.video.profile
    assert video["level"] == shape.video.level_idc
    assert Fraction(str(video["r_frame_rate"])) == shape.video.fps
    if shape.audio is None:
        assert "audio" not in streams
    else:
        audio = streams["audio"]
        assert (int(str(audio["sample_rate"])), audio["channels"], audio["profile"]) == (
            shape.audio.sample_rate,
            shape.audio.channels,
            "LC",
        )
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == ""
    # One GOP of 2 s: a keyframe first and only first; a few kB in memory.
    assert len(slate.gop) == round(2 * shape.video.fps)
    assert slate.gop_kinds[0] is FrameKind.VIDEO_KEY and FrameKind.VIDEO_KEY not in slate.gop_kinds[1:]
    assert slate.size_bytes < 200_000
    report = cache.last_report
    assert report is not None and report.bytes == path.stat().st_size


async def test_a_slate_made_once_is_loaded_from_the_data_folder_for_the_next_stream(tmp_path: Path) -> None:
    shape = SHAPES[0]
    first = SlateCache(tmp_path)
    assert await first.get(shape, timeout_s=60) is not None
    made = first.path(shape).stat().st_mtime_ns
    calls: list[str] = []

    def never(*args: object) -> list[str]:
        calls.append("made")
        return ["false"]

    second = SlateCache(tmp_path, command=never)
    slate = await second.get(shape, timeout_s=60)
    assert slate is not None and calls == [] and second.path(shape).stat().st_mtime_ns == made
    # Another picture is another slate (its bytes are in the cache key).
    image = tmp_path / "brb.png"
    image.write_bytes(b"not really a png")
    assert SlateCache(tmp_path, image).path(shape) != first.path(shape)


async def test_a_maker_that_fails_leaves_no_slate_and_says_why(tmp_path: Path) -> None:
    cache = SlateCache(tmp_path, command=lambda *args: ["python3", "-c", "import sys; sys.exit('no libx264 here')"])
    assert await cache.get(SHAPES[0], timeout_s=30) is None
    assert "no libx264 here" in cache.failures[SHAPES[0]]


@needs_ffmpeg
@pytest.mark.parametrize(
    ("profile", "size", "rate", "sample_rate", "channels"),
    [
        ("baseline", "426x240", "15", 22050, 1),
        ("main", "854x480", "25", 44100, 2),
        ("high", "1920x1080", "60", 48000, 2),
    ],
)
def test_the_shape_of_an_x264_stream_is_read_from_its_sequence_headers(
    profile: str, size: str, rate: str, sample_rate: int, channels: int, tmp_path: Path
) -> None:
    out = tmp_path / "x264.flv"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
         "-f", "lavfi", "-i", f"sine=sample_rate={sample_rate}", "-t", "0.5", "-c:v", "libx264",
         "-profile:v", profile, "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", str(channels), str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    shape = shape_of(headers_of(flv.read_flv(out.read_bytes())))
    width, height = map(int, size.split("x"))
    assert (shape.video.profile, shape.video.width, shape.video.height) == (profile, width, height)
    assert shape.video.fps == int(rate)
    assert shape.audio == AudioShape("aac", 2, sample_rate, channels)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000, 44100, 48000, 96000])
def test_aac_lc_rates_are_read_from_the_audio_specific_config(rate: int) -> None:
    index = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000].index(rate)
    config = ((2 << 11) | (index << 7) | (2 << 3)).to_bytes(2, "big")
    assert aac_shape(config) == AudioShape("aac", 2, rate, 2)


def test_no_slate_for_he_aac_av1_unreadable_hevc_or_a_stream_without_video_and_the_reason_says_which() -> None:
    he_aac = ((5 << 11) | (3 << 7) | (2 << 3)).to_bytes(2, "big")
    with pytest.raises(NoSlate, match="object type 5"):
        aac_shape(he_aac)
    headers = HeaderCache()
    with pytest.raises(NoSlate, match="no video sequence header"):
        shape_of(headers)
    headers.update(Frame(m.VIDEO, 0, b"\x90av01" + b"\x81" * 30, FrameKind.SEQUENCE_HEADER, "av1"))
    with pytest.raises(NoSlate, match=r"video is av1; a slate can be made for H\.264 and HEVC only"):
        shape_of(headers)
    headers.update(Frame(m.VIDEO, 0, b"\x90hvc1" + b"\x01" * 30, FrameKind.SEQUENCE_HEADER, "hevc"))
    with pytest.raises(NoSlate, match="HEVC sequence header cannot be read"):
        shape_of(headers)


def test_a_slate_file_that_is_not_one_is_refused() -> None:
    with pytest.raises(Exception, match="no single GOP"):
        load_slate(SHAPES[0], flv.flv_header())


async def test_a_publisher_repeating_headers_that_have_no_slate_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """300 sequence headers without an SPS once wrote 300 WARNING lines: the reason is said once per stream."""
    import asyncio

    from agent.relay import protection
    from agent.relay.settings import RelaySettings

    monkeypatch.setattr(protection, "SHAPE_SETTLE_S", 0.0)
    guard = protection.Protection(RelaySettings(hold_s=120), tmp_path, clock=lambda: 0.0)
    if guard.slates is None:
        pytest.skip(f"no slates here: {guard.start_note}")
    headers = HeaderCache()  # no video sequence header at all: no shape, no slate
    with caplog.at_level("WARNING", logger="agent.relay.relay"):
        for _ in range(30):
            guard.headers_changed(headers)
            await asyncio.sleep(0.005)
    lines = [record for record in caplog.records if "no slate for this stream" in record.getMessage()]
    assert len(lines) == 1
    assert guard.stream_note is not None and "no video sequence header" in guard.stream_note

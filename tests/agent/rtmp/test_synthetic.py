"""The synthetic stream is valid H.264 + AAC for a real decoder (ffmpeg), hits its target bitrate, steps bitrate
on demand and places keyframes where asked."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.rtmp import flv
from agent.rtmp.synthetic import BitWriter, SyntheticStream, emulation_prevention, silent_aac_frame

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg/ffprobe (apt install ffmpeg)")


def _write_flv(stream: SyntheticStream, seconds: float, path: Path) -> None:
    tags = [*stream.sequence_headers()]
    while True:
        frame = stream.next_frame()
        if frame.timestamp_ms >= seconds * 1000:
            break
        tags.append(frame)
    data = flv.flv_header() + b"".join(
        flv.write_tag(flv.FlvTag(flv.TAG_VIDEO if t.kind == "video" else flv.TAG_AUDIO, t.timestamp_ms, t.payload))
        for t in tags
    )
    path.write_bytes(data)


@needs_ffmpeg
@pytest.mark.parametrize(("width", "height", "fps"), [(640, 360, 30), (1280, 720, 60), (854, 480, 25)])
def test_ffmpeg_decodes_every_frame_without_a_single_error(tmp_path: Path, width: int, height: int, fps: int) -> None:
    stream = SyntheticStream(width=width, height=height, fps=fps, video_bitrate_bps=800_000, keyframe_interval_s=1)
    path = tmp_path / "synthetic.flv"
    _write_flv(stream, 3, path)
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decode.returncode == 0 and decode.stderr == ""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", width, height)
    assert video["r_frame_rate"] == f"{fps}/1"
    assert int(video["nb_read_frames"]) == 3 * fps
    assert (audio["codec_name"], audio["profile"], int(audio["sample_rate"]), audio["channels"]) == (
        "aac",
        "LC",
        48000,
        2,
    )
    assert int(audio["nb_read_frames"]) == pytest.approx(3 * 48000 / 1024, abs=1)


@pytest.mark.parametrize("bitrate_bps", [300_000, 2_500_000, 20_000_000])
def test_video_bytes_match_the_target_bitrate(bitrate_bps: int) -> None:
    stream = SyntheticStream(video_bitrate_bps=bitrate_bps, fps=30)
    video = [f for f in (stream.next_frame() for _ in range(600)) if f.kind == "video"]
    seconds = len(video) / 30
    assert sum(len(f.payload) for f in video) * 8 / seconds == pytest.approx(bitrate_bps, rel=0.01)


def test_bitrate_steps_apply_from_the_next_frame() -> None:
    stream = SyntheticStream(video_bitrate_bps=1_000_000, fps=25)
    first = [stream._next_video() for _ in range(50)]
    stream.set_video_bitrate(4_000_000)
    second = [stream._next_video() for _ in range(50)]
    assert sum(len(f.payload) for f in first) * 8 / 2 == pytest.approx(1_000_000, rel=0.01)
    assert sum(len(f.payload) for f in second) * 8 / 2 == pytest.approx(4_000_000, rel=0.01)


def test_keyframes_come_every_interval_and_only_then() -> None:
    stream = SyntheticStream(fps=30, keyframe_interval_s=2)
    video = [stream._next_video() for _ in range(361)]
    keyframes = [f.timestamp_ms for f in video if f.keyframe]
    assert keyframes == [0, 2000, 4000, 6000, 8000, 10000, 12000]
    assert all(flv.is_keyframe(f.payload) == f.keyframe for f in video)


def test_frames_come_out_in_timestamp_order_and_can_be_pushed_back() -> None:
    stream = SyntheticStream()
    frames = [stream.next_frame() for _ in range(200)]
    assert [f.timestamp_ms for f in frames] == sorted(f.timestamp_ms for f in frames)
    stream.push_back(frames[-1])
    assert stream.next_frame() is frames[-1]


def test_audio_frames_are_padded_to_the_audio_bitrate() -> None:
    stream = SyntheticStream(audio_bitrate_bps=128_000)
    audio = [f for f in (stream.next_frame() for _ in range(400)) if f.kind == "audio"]
    seconds = len(audio) * 1024 / 48000
    assert sum(len(f.payload) for f in audio) * 8 / seconds == pytest.approx(128_000, rel=0.03)
    assert len(silent_aac_frame(2)) == 7  # unpadded: a silent channel pair and the end marker


def test_exp_golomb_codes_and_emulation_prevention() -> None:
    bits = BitWriter()
    for value in (0, 1, 2, 3, 7):
        bits.ue(value)
    bits.se(-1)
    bits.trailing_bits()
    # 1 010 011 00100 0001000 011 (se -1 -> ue 2) then stop bit
    assert bits.getvalue() == int("1010011001000001000011" + "1" + "0", 2).to_bytes(3, "big")
    assert (
        emulation_prevention(b"\x00\x00\x01\x00\x00\x00\x00\x00\x04")
        == b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03\x00\x04"
    )

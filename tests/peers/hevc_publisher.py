"""An HEVC encoder publishing over enhanced RTMP (FourCC hvc1), as OBS 29.1+ does with NVENC/AMF/QSV HEVC.

Run as its own process (`python -m tests.peers.hevc_publisher URL SECONDS [--size WxH] [--fps N] [--ten-bit]`),
so a test can kill it with -9 like a crashing encoder. PyAV, not the ffmpeg command: the system's ffmpeg 5.1
cannot put HEVC in FLV, while PyAV's FFmpeg 8 (libx265, its FLV muxer and RTMP client) speaks enhanced RTMP.
A moving test pattern (lavfi testsrc2) with x265 at its ultrafast defaults (B-frames on), a keyframe every
2 s, and a 440 Hz tone in AAC 48 kHz stereo, paced in real time (ffmpeg's -re).
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import av

AUDIO_RATE = 48000


def encode_file(
    path: str, frames: int, size: str, fps: int | Fraction, pix_fmt: str, profile: str, x265_params: str
) -> None:
    """A few frames of the test pattern as x265 makes them with `x265_params`, in an (enhanced) FLV file:
    real sequence headers for the shape reader's tests."""
    width, height = map(int, size.split("x"))
    pattern = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
    with av.open(path, "w", format="flv") as out:
        video = out.add_stream("libx265", rate=fps)
        context = video.codec_context
        context.width, context.height, context.pix_fmt = width, height, pix_fmt
        context.options = {"preset": "ultrafast", "profile": profile, "x265-params": f"{x265_params}:log-level=error"}
        for index, picture in zip(range(frames), pattern.decode(video=0), strict=False):
            picture = picture.reformat(format=pix_fmt)
            picture.pts, picture.time_base = index, Fraction(1, fps)
            out.mux(video.encode(picture))
        out.mux(video.encode(None))


def publish(url: str, seconds: float, size: str, fps: int, ten_bit: bool) -> None:
    width, height = map(int, size.split("x"))
    pattern = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
    tone = av.open(f"sine=frequency=440:sample_rate={AUDIO_RATE}", format="lavfi")
    pix_fmt = "yuv420p10le" if ten_bit else "yuv420p"
    with av.open(url, "w", format="flv") as out:
        video = out.add_stream("libx265", rate=fps)
        context = video.codec_context
        context.width, context.height, context.pix_fmt = width, height, pix_fmt
        context.gop_size = 2 * fps
        context.bit_rate = 1_000_000
        context.options = {
            "preset": "ultrafast",
            "profile": "main10" if ten_bit else "main",
            "x265-params": f"keyint={2 * fps}:min-keyint={2 * fps}:log-level=error",
        }
        audio = out.add_stream("aac", rate=AUDIO_RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.bit_rate = 128_000
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=1024)
        pictures, sounds = pattern.decode(video=0), tone.decode(audio=0)
        started = time.monotonic()
        samples_sent = 0
        for index in range(round(seconds * fps)):
            picture = next(pictures)
            due = started + index / fps
            time.sleep(max(0.0, due - time.monotonic()))
            picture = picture.reformat(format=pix_fmt) if ten_bit else picture
            picture.pts, picture.time_base = index, Fraction(1, fps)
            out.mux(video.encode(picture))
            while samples_sent < (index + 1) * AUDIO_RATE // fps:  # audio up to this picture's time
                for chunk in resampler.resample(next(sounds)):
                    chunk.pts, chunk.time_base = samples_sent, Fraction(1, AUDIO_RATE)
                    samples_sent += chunk.samples
                    out.mux(audio.encode(chunk))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("seconds", type=float)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--ten-bit", action="store_true")
    args = parser.parse_args()
    publish(args.url, args.seconds, args.size, args.fps, args.ten_bit)


if __name__ == "__main__":
    main()

"""Encodes one slate (a still picture and silence, shaped like the live stream) into an FLV file.

Run in its own process (`python -m agent.relay.slate_maker SHAPE_JSON OUT [IMAGE]`, started by slate.py):
PyAV's FFmpeg libraries cost tens of MB once loaded, and the agent's budget is 70 MB, so the agent itself
never imports `av`; the memory is spent only while a slate is made, once per stream shape. PyAV rather
than the ffmpeg command: its wheels carry FFmpeg's libraries (x264, x265 with its 10-bit build, the AAC
encoder, an FLV muxer that writes enhanced FLV for HEVC) on Windows and macOS too, where the ffmpeg command
is often missing or too old to put HEVC in FLV. Prints one JSON line: the file's size and
the process's peak memory. Not for anything the agent does while forwarding.
"""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from agent.relay.hevc_shape import to_legacy_form
from agent.relay.stream_shape import StreamShape, VideoShape
from agent.rtmp.flv import TAG_VIDEO, FlvTag, flv_header, read_flv, write_tag

GOP_S: Final = 2.0  # one keyframe every 2 s, what every platform asks for
AUDIO_S: Final = 1.0  # enough silence for the encoder to settle; the player repeats its last frame
BACKGROUND: Final = (40, 128, 128)  # Y, U, V: a dark grey
TEXT_LUMA: Final = 235
TEXT: Final = "BE RIGHT BACK"
# A 5x7 pixel font, only the letters the default slate needs.
GLYPHS: Final = {
    "B": ["11110", "10001", "10001", "11110", "10001", "10001", "11110"],
    "E": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
    "R": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],
    "I": ["01110", "00100", "00100", "00100", "00100", "00100", "01110"],
    "G": ["01110", "10001", "10000", "10111", "10001", "10001", "01111"],
    "H": ["10001", "10001", "10001", "11111", "10001", "10001", "10001"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "C": ["01110", "10001", "10000", "10000", "10000", "10001", "01110"],
    "K": ["10001", "10010", "10100", "11000", "10100", "10010", "10001"],
    " ": ["00000"] * 7,
}


def text_mask(width: int, height: int, text: str = TEXT) -> list[bytearray]:
    """Rows of 0/1 marking the text's pixels, centred, the letters about a tenth of the picture's height."""
    rows = [bytearray(width) for _ in range(height)]
    cell = max(1, min(height // 70, width // (len(text) * 6 + 2)))
    text_w, text_h = (len(text) * 6 - 1) * cell, 7 * cell
    left, top = (width - text_w) // 2, (height - text_h) // 2
    for index, char in enumerate(text):
        glyph = GLYPHS.get(char, GLYPHS[" "])
        for gy, line in enumerate(glyph):
            for gx, bit in enumerate(line):
                if bit == "1":
                    x0, y0 = left + (index * 6 + gx) * cell, top + gy * cell
                    for y in range(y0, y0 + cell):
                        rows[y][x0 : x0 + cell] = b"\x01" * cell
    return rows


def _text_picture(av: Any, width: int, height: int) -> Any:
    frame = av.VideoFrame(width, height, "yuv420p")
    mask = text_mask(width, height)
    for index, plane in enumerate(frame.planes):
        plane_w, plane_h = (width, height) if index == 0 else ((width + 1) // 2, (height + 1) // 2)
        stride = plane.line_size
        data = bytearray(bytes([BACKGROUND[index]]) * (stride * plane_h))
        if index == 0:
            for y in range(plane_h):
                row = mask[y]
                if any(row):
                    start = y * stride
                    data[start : start + plane_w] = bytes(TEXT_LUMA if bit else BACKGROUND[0] for bit in row)
        plane.update(bytes(data))
    return frame


def _image_picture(av: Any, image: Path, width: int, height: int, pix_fmt: str) -> Any:
    with av.open(str(image)) as source:
        picture = next(source.decode(video=0))
    return picture.reformat(width=width, height=height, format=pix_fmt)


def _encoder_setup(video: VideoShape, frames: int) -> tuple[str, str, dict[str, str]]:
    """The encoder, its pixel format and options for one GOP of a still picture, shaped like `video`.
    Both: a keyframe only at the GOP's start, no B-frames (the relay sends the GOP over and over, so it
    must not reorder), one reference, and the parameter sets in each keyframe (hold.py's
    with_parameter_sets says why)."""
    if video.codec == "hevc":
        ten_bit = video.profile == "main10"
        params = (
            f"keyint={frames}:min-keyint={frames}:scenecut=0:bframes=0:ref=1:open-gop=0:repeat-headers=1"
            f":level-idc={video.level}:high-tier={video.tier}:log-level=error"
            # a still picture: no lookahead to speak of, one frame thread (memory, and nothing to gain)
            ":rc-lookahead=2:frame-threads=1:aq-mode=0"
        )
        # ultrafast: the text stays sharp at this CRF and the 1080p60 Main 10 slate takes 1.6 s, not 3.9 s
        options = {"profile": video.profile, "preset": "ultrafast", "crf": "26", "x265-params": params}
        return "libx265", "yuv420p10le" if ten_bit else "yuv420p", options
    options = {
        "profile": video.profile,
        "level": video.level,
        "preset": "veryfast",
        "tune": "stillimage",
        "crf": "23",
        "x264-params": f"keyint={frames}:min-keyint={frames}:scenecut=0:bframes=0:ref=1:repeat-headers=1",
    }
    return "libx264", "yuv420p", options


def make(shape: StreamShape, out: Path, image: Path | None = None) -> int:
    """Writes the slate to `out` (atomically); returns its size in bytes."""
    import av  # here only: see the module docstring

    video = shape.video
    rate = Fraction(video.fps_num, video.fps_den)
    frames = max(1, round(GOP_S * rate))
    encoder, pix_fmt, options = _encoder_setup(video, frames)
    if image:
        picture = _image_picture(av, image, video.width, video.height, pix_fmt)
    else:
        picture = _text_picture(av, video.width, video.height)
        picture = picture.reformat(format=pix_fmt) if pix_fmt != "yuv420p" else picture
    partial = out.with_suffix(".partial")
    with av.open(str(partial), "w", format="flv") as container:
        stream = container.add_stream(encoder, rate=rate)
        assert isinstance(stream, av.VideoStream)  # for mypy: the encoder's name is not a literal
        context = stream.codec_context
        context.width, context.height, context.pix_fmt = video.width, video.height, pix_fmt
        context.gop_size = frames
        context.max_b_frames = 0
        context.options = options
        try:
            context.open()
        except av.error.FFmpegError as exc:  # x265 refuses a level too low for the picture size and rate
            partial.unlink(missing_ok=True)
            raise SystemExit(
                f"{encoder} cannot encode {shape.describe()} at level {video.level}: {exc.strerror}"
            ) from None
        audio_stream = None
        if shape.audio is not None:
            audio_stream = container.add_stream("aac", rate=shape.audio.sample_rate)
            audio_stream.codec_context.layout = "mono" if shape.audio.channels == 1 else "stereo"
            audio_stream.codec_context.bit_rate = 64_000 * shape.audio.channels
        for index in range(frames):
            picture.pts = index
            picture.time_base = Fraction(1) / rate
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
        if audio_stream is not None and shape.audio is not None:
            layout = "mono" if shape.audio.channels == 1 else "stereo"
            for index in range(int(AUDIO_S * shape.audio.sample_rate / 1024) + 1):
                silence = av.AudioFrame(format="fltp", layout=layout, samples=1024)
                for plane in silence.planes:
                    plane.update(bytes(plane.buffer_size))
                silence.sample_rate = shape.audio.sample_rate
                silence.pts = index * 1024
                silence.time_base = Fraction(1, shape.audio.sample_rate)
                container.mux(audio_stream.encode(silence))
            container.mux(audio_stream.encode(None))
    if video.legacy_form:
        partial.write_bytes(legacy_hevc_file(partial.read_bytes()))
    os.replace(partial, out)
    return out.stat().st_size


def legacy_hevc_file(data: bytes) -> bytes:
    """The FLV file with its HEVC video tags in the legacy codec-id-12 form (FFmpeg writes enhanced FLV)."""
    out = [flv_header()]
    for tag in read_flv(data):
        body = to_legacy_form(tag.data) if tag.tag_type == TAG_VIDEO else tag.data
        if tag.tag_type == TAG_VIDEO and body[0] & 0x80:
            continue  # E-RTMP's metadata packet (colour information) has no legacy form
        out.append(write_tag(FlvTag(tag.tag_type, tag.timestamp, body)))
    return b"".join(out)


def peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m agent.relay.slate_maker SHAPE_JSON OUT [IMAGE]", file=sys.stderr)
        return 2
    shape = StreamShape.from_json(argv[0])
    size = make(shape, Path(argv[1]), Path(argv[2]) if len(argv) == 3 else None)
    print(json.dumps({"bytes": size, "peak_rss_bytes": peak_rss_bytes()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Encodes one slate (a still picture and silence, shaped like the live stream) into an FLV file.

Run in its own process (`python -m agent.relay.slate_maker SHAPE_JSON OUT [IMAGE]`, started by slate.py):
PyAV's FFmpeg libraries cost tens of MB once loaded, and the agent's budget is 70 MB, so the agent itself
never imports `av`; the memory is spent only while a slate is made, once per stream shape. PyAV rather
than the ffmpeg command: its wheels carry FFmpeg's libraries (x264 and the AAC encoder included) on
Windows and macOS too, where the ffmpeg command is often missing. Prints one JSON line: the file's size and
the process's peak memory. Not for anything the agent does while forwarding.
"""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from agent.relay.stream_shape import StreamShape

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


def _image_picture(av: Any, image: Path, width: int, height: int) -> Any:
    with av.open(str(image)) as source:
        picture = next(source.decode(video=0))
    return picture.reformat(width=width, height=height, format="yuv420p")


def make(shape: StreamShape, out: Path, image: Path | None = None) -> int:
    """Writes the slate to `out` (atomically); returns its size in bytes."""
    import av  # here only: see the module docstring

    video = shape.video
    rate = Fraction(video.fps_num, video.fps_den)
    frames = max(1, round(GOP_S * rate))
    picture = (
        _image_picture(av, image, video.width, video.height) if image else _text_picture(av, video.width, video.height)
    )
    partial = out.with_suffix(".partial")
    with av.open(str(partial), "w", format="flv") as container:
        stream = container.add_stream("libx264", rate=rate)
        context = stream.codec_context
        context.width, context.height, context.pix_fmt = video.width, video.height, "yuv420p"
        context.gop_size = frames
        context.max_b_frames = 0
        context.options = {
            "profile": video.profile,
            "level": video.level,
            "preset": "veryfast",
            "tune": "stillimage",
            "crf": "23",
            # repeat-headers: SPS and PPS in each keyframe (hold.py's with_parameter_sets says why)
            "x264-params": f"keyint={frames}:min-keyint={frames}:scenecut=0:bframes=0:ref=1:repeat-headers=1",
        }
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
    os.replace(partial, out)
    return out.stat().st_size


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

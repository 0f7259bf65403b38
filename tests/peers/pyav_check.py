"""FFmpeg 8 (PyAV's) reading a recording the way `ffmpeg -v error -i FILE -f null -` does: every packet decoded,
every error line FFmpeg logs collected. The system's ffmpeg 5.1 cannot read HEVC in enhanced FLV; PyAV's can.

Run as its own process (`python -m tests.peers.pyav_check FILE`) so FFmpeg's global log level and callback
stay out of the test process; prints one JSON object: the streams' parameters, frames decoded, the video
packets' (dts, pts) in seconds, and the error lines.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction

import av
import av.logging


def check(path: str) -> dict[str, object]:
    av.logging.set_level(av.logging.ERROR)
    with av.logging.Capture() as logs, av.open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        report: dict[str, object] = {}
        if video is not None:
            context = video.codec_context
            rate = video.guessed_rate or video.average_rate or Fraction(0)
            report["video"] = {"codec": context.name, "profile": context.profile, "width": context.width,
                               "height": context.height, "pix_fmt": context.pix_fmt, "fps": str(rate)}  # fmt: skip
        if audio is not None:
            report["audio"] = {"codec": audio.codec_context.name, "sample_rate": audio.codec_context.sample_rate,
                               "channels": audio.codec_context.channels}  # fmt: skip
        frames = {"video": 0, "audio": 0}
        packets: list[tuple[float, float]] = []
        for packet in container.demux():
            if packet.stream.type == "video" and packet.dts is not None and packet.time_base is not None:
                pts = packet.pts if packet.pts is not None else packet.dts
                packets.append((float(packet.dts * packet.time_base), float(pts * packet.time_base)))
            for _ in packet.decode():
                frames[packet.stream.type] = frames.get(packet.stream.type, 0) + 1
    report["frames"] = frames
    report["video_packets"] = packets
    report["errors"] = [f"{name}: {message.strip()}" for level, name, message in logs if level <= av.logging.ERROR]
    return report


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1])))

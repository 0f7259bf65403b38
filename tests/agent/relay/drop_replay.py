"""Real encoder output replayed through the drop policy over a simulated slow link, no sockets: what the ingest
would get, written back out and judged by ffmpeg's own decoder.

The streams come from ffmpeg's encoders with the settings the relay meets in the field (x264 as OBS runs it,
x264 at its defaults with a B-pyramid, an NVENC-like "middle" B reference, open GOPs, x265 for HEVC). The
replay follows destination.py: a frame goes straight out when nothing is queued, no drop is under way and the
link's buffers (asyncio's and the kernel's, `BUFFERED_BYTES`) have room; otherwise it goes through
`MediaQueue.push`, and the queue is emptied into the buffers as the link drains them at its rate.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.relay.frames import PICTURE_KINDS, Frame, FrameClassifier, FrameKind
from agent.relay.queue import MediaQueue, QueueLimits
from agent.rtmp import flv
from agent.rtmp import messages as m

# What the relay's socket path holds beyond its queue: asyncio's write buffer up to its high-water mark and
# the kernel's unsent bytes up to TCP_NOTSENT_LOWAT, at their ceilings (below_queue.py). The relay now sizes
# them from the egress rate, and the real runs freeze less for it (test_relay_drops_e2e.py); this replay
# keeps the ceilings: its link is a fluid that takes frames only when one arrives, and with the smaller
# sizes (plus the kernel's measured overshoot) it froze 1.53 s in two of its cuts to a third, an artefact
# of the model, while the real runs froze 1.37-1.47 s.
BUFFERED_BYTES: Final = 64 * 1024 + 128 * 1024
FPS: Final = 30

_VIDEO = ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}"]
_AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
_RATE = ["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k", "-g", str(2 * FPS), "-pix_fmt", "yuv420p"]

# name -> ffmpeg video encoder arguments (H.264 ones go into FLV with AAC audio).
H264_ENCODERS: Final = {
    # OBS Studio's x264 output: veryfast, High profile, 2 B-frames (a B-pyramid: the first is a reference).
    "obs-x264": ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-bf", "2"],
    # x264 at its defaults: 3 B-frames, b-pyramid normal, 3 reference frames, weighted P prediction.
    "x264-defaults": ["-c:v", "libx264"],
    # NVENC with `-bf 2 -b_ref_mode middle`: one B reference in each group, P frames never reference it.
    "nvenc-like": ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-x264-params", "b-pyramid=strict"],
    # Open GOPs: the keyframes are I pictures with a recovery point, their leading B-frames reference the
    # GOP before.
    "x264-open-gop": ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-x264-params", "open-gop=1"],
}
# HEVC: x265 at its defaults (4 B-frames, a B-pyramid, open GOPs: CRA keyframes with RASL pictures).
HEVC_ENCODERS: Final = {
    "x265-defaults": ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", "log-level=error:aud=1"],
    "x265-closed-gop": ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", "log-level=error:aud=1:open-gop=0"],
}


def encode_h264(encoder: str, seconds: int, path: Path) -> list[Frame]:
    """An FLV of `seconds` (test pattern and tone) from one of `H264_ENCODERS`, as classified frames."""
    if not path.exists():
        _ffmpeg([*_VIDEO, *_AUDIO, "-t", str(seconds), *H264_ENCODERS[encoder], *_RATE,
                 "-c:a", "aac", "-b:a", "160k", "-f", "flv", str(path)])  # fmt: skip
    classifier = FrameClassifier()
    frames = []
    for tag in flv.read_flv(path.read_bytes()):
        if tag.tag_type in (flv.TAG_AUDIO, flv.TAG_VIDEO):
            type_id = m.AUDIO if tag.tag_type == flv.TAG_AUDIO else m.VIDEO
            kind, codec = classifier.classify(type_id, tag.data, tag.timestamp)
            frames.append(Frame(type_id, tag.timestamp, tag.data, kind, codec))
    return frames


def write_flv(frames: list[Frame], path: Path) -> None:
    tags = (
        flv.FlvTag(flv.TAG_AUDIO if f.type_id == m.AUDIO else flv.TAG_VIDEO, f.timestamp_ms, f.payload) for f in frames
    )
    path.write_bytes(flv.flv_header() + b"".join(flv.write_tag(tag) for tag in tags))


# ------------------------------------------------------------------------------------------------ HEVC


def encode_hevc(encoder: str, seconds: int, path: Path) -> list[Frame]:
    """Raw HEVC from one of `HEVC_ENCODERS` (ffmpeg 5.1 cannot put HEVC in FLV), cut into access units at
    its access unit delimiters and carried as E-RTMP would carry it: a SequenceStart with the parameter sets,
    then CodedFramesX bodies of length-prefixed NAL units; AAC-sized audio frames in between, so the link
    carries what a real stream's would."""
    if not path.exists():
        _ffmpeg([*_VIDEO, "-t", str(seconds), *HEVC_ENCODERS[encoder], *_RATE, "-f", "hevc", str(path)])
    units = _access_units(path.read_bytes())
    classifier = FrameClassifier()
    frames: list[Frame] = []
    header = _ex_video(1, 0, _hvcc_record(units[0]))
    kind, codec = classifier.classify(m.VIDEO, header)
    frames.append(Frame(m.VIDEO, 0, header, kind, codec))
    audio_ts = 0
    for index, unit in enumerate(units):
        ts = index * 1000 // FPS
        while audio_ts <= ts:
            frames.append(Frame(m.AUDIO, audio_ts, b"\xaf\x01" + bytes(420), FrameKind.AUDIO, "aac"))
            audio_ts += 21
        irap = any(16 <= (nal[0] >> 1) & 0x3F <= 23 for nal in unit)
        body = _ex_video(1 if irap else 2, 3, b"".join(len(nal).to_bytes(4, "big") + nal for nal in unit))
        kind, codec = classifier.classify(m.VIDEO, body, ts)
        frames.append(Frame(m.VIDEO, ts, body, kind, codec))
    return frames


def write_hevc(frames: list[Frame], path: Path) -> None:
    """The pictures back as an Annex B stream, for ffmpeg's HEVC decoder."""
    out = bytearray()
    for frame in frames:
        if frame.kind in PICTURE_KINDS:
            body, pos = frame.payload, 5
            while pos + 4 <= len(body):
                length = int.from_bytes(body[pos : pos + 4], "big")
                out += b"\x00\x00\x00\x01" + body[pos + 4 : pos + 4 + length]
                pos += 4 + length
    path.write_bytes(bytes(out))


def _ex_video(frame_type: int, packet_type: int, data: bytes) -> bytes:
    return bytes([0x80 | frame_type << 4 | packet_type]) + b"hvc1" + data


def _nal_units(stream: bytes) -> Iterator[bytes]:
    starts = []
    pos = stream.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos + 3)
        pos = stream.find(b"\x00\x00\x01", pos + 3)
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(stream)
        yield stream[start:end].rstrip(b"\x00")


def _access_units(stream: bytes) -> list[list[bytes]]:
    units: list[list[bytes]] = []
    for nal in _nal_units(stream):
        if (nal[0] >> 1) & 0x3F == 35 or not units:  # access unit delimiter
            units.append([])
        units[-1].append(nal)
    return units


def _hvcc_record(first_unit: list[bytes]) -> bytes:
    """An HEVCDecoderConfigurationRecord holding the stream's VPS, SPS and PPS; numTemporalLayers 0
    ("unknown"), so the classifier reads the SPS for it."""
    arrays = b""
    sets = [nal for nal in first_unit if (nal[0] >> 1) & 0x3F in (32, 33, 34)]
    for nal in sets:
        arrays += bytes([(nal[0] >> 1) & 0x3F]) + (1).to_bytes(2, "big") + len(nal).to_bytes(2, "big") + nal
    return bytes([1] + [0] * 20 + [0x03, len(sets)]) + arrays


# ------------------------------------------------------------------------------------------- the replay


@dataclass
class Replay:
    sent: list[Frame]
    queue: MediaQueue
    link_bytes_per_s: float


def stream_bytes_per_s(frames: list[Frame]) -> float:
    media = [f for f in frames if f.type_id in (m.AUDIO, m.VIDEO)]
    span_s = (media[-1].timestamp_ms - media[0].timestamp_ms) / 1000 or 1.0
    return sum(f.size_bytes for f in media) / span_s


def replay(
    frames: list[Frame],
    link_ratio: Callable[[float], float],
    limits: QueueLimits | None = None,
) -> Replay:
    """Frames arrive at their timestamps; the link carries `link_ratio(t_s)` of the stream's mean rate."""
    queue = MediaQueue(limits)
    mean_bytes_per_s = stream_bytes_per_s(frames)
    sent: list[Frame] = []
    buffered = 0.0
    now_s = 0.0
    for frame in frames:
        arrival_s = frame.timestamp_ms / 1000
        if arrival_s > now_s:
            buffered = max(0.0, buffered - (arrival_s - now_s) * link_ratio(now_s) * mean_bytes_per_s)
            now_s = arrival_s
        while buffered < BUFFERED_BYTES and (head := queue.pop()) is not None:
            sent.append(head)
            buffered += head.size_bytes
        if not queue and not queue.dropping and buffered < BUFFERED_BYTES:
            sent.append(frame)
            buffered += frame.size_bytes
        else:
            queue.push(frame)
    sent.extend(iter(queue.pop, None))
    return Replay(sent, queue, link_ratio(0) * mean_bytes_per_s)


def cut(ratio: float, start_s: float, seconds: float) -> Callable[[float], float]:
    """A link at twice the stream's rate, cut to `ratio` of it from `start_s` for `seconds`."""
    return lambda t_s: ratio if start_s <= t_s < start_s + seconds else 2.0


def decode_errors(path: Path, input_format: str | None = None) -> str:
    """What `ffmpeg -v error` prints decoding the file (empty: it decodes cleanly)."""
    forced = ["-f", input_format] if input_format else []
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *forced, "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.stderr if result.returncode == 0 else f"exit {result.returncode}: {result.stderr}"


def decoded_pictures(path: Path, input_format: str | None = None) -> list[str]:
    """The MD5 of every picture ffmpeg decodes from the file, in output order (none made up or repeated)."""
    forced = ["-f", input_format] if input_format else []
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "quiet", *forced, "-i", str(path), "-map", "0:v", "-fps_mode", "passthrough",
         "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in result.stdout.splitlines() if line and not line.startswith("#")]


def longest_video_gap_ms(frames: list[Frame]) -> int:
    """The longest time between two consecutive pictures, by decoding timestamp."""
    stamps = [f.timestamp_ms for f in frames if f.kind in PICTURE_KINDS]
    return max((b - a for a, b in itertools.pairwise(stamps)), default=0)


def _ffmpeg(arguments: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *arguments],
                   check=True, timeout=300)  # fmt: skip

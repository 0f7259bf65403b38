"""ffmpeg's `-progress` format, without I/O: bytes in, blocks out, samples out.

ffmpeg writes `key=value` lines and ends each block with `progress=continue` (or `progress=end` on the
last one), wherever it writes: a file, a pipe, a TCP socket, a chunked HTTP POST. `ProgressParser` takes
bytes cut anywhere and yields complete blocks; values may be `N/A` (before the first packet) and speed is
padded (`speed=   1x`). `ProgressTracker` turns blocks into `FfmpegSample`s with the rates ffmpeg does
not give: dropped frames over a sliding window and the speed of the last seconds (ffmpeg's `speed` is an
average since the start, so it reacts slowly to an uplink that just went bad).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agent.errors import ProtocolError
from agent.models import FfmpegSample, utc_now

MAX_LINE_BYTES = 4096  # real lines are < 100 bytes; a longer one is not -progress output
MAX_BLOCK_KEYS = 256  # ffmpeg adds one stream_N_M_q line per output stream; far below this

_BITRATE = re.compile(r"^\s*([0-9.]+)\s*([kmg]?)bits/s\s*$", re.IGNORECASE)
_SPEED = re.compile(r"^\s*([0-9.]+(?:e[+-]?\d+)?)\s*x\s*$", re.IGNORECASE)
_OUT_TIME = re.compile(r"^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")
_BITRATE_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}

Via = Literal["file", "wrapper", "http"]


@dataclass(frozen=True)
class ProgressBlock:
    """One `-progress` block, parsed; None where ffmpeg said N/A or did not say."""

    frame: int | None
    fps: float | None
    bitrate_bps: float | None
    total_size_bytes: int | None
    out_time_s: float | None
    dup_frames: int | None
    drop_frames: int | None
    speed_ratio: float | None
    ended: bool


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _bitrate_bps(value: str | None) -> float | None:
    match = _BITRATE.match(value or "")
    return round(float(match.group(1)) * _BITRATE_SCALE[match.group(2).lower()], 1) if match else None


def _speed(value: str | None) -> float | None:
    match = _SPEED.match(value or "")
    return float(match.group(1)) if match else None


def _out_time_s(fields: dict[str, str]) -> float | None:
    micros = _int(fields.get("out_time_us"))
    if micros is None:
        micros = _int(fields.get("out_time_ms"))  # ffmpeg writes microseconds here too (a historic misnomer)
    if micros is not None:
        return micros / 1e6
    match = _OUT_TIME.match((fields.get("out_time") or "").strip())
    if match is None:
        return None
    seconds = int(match.group(2)) * 3600 + int(match.group(3)) * 60 + float(match.group(4))
    return -seconds if match.group(1) else seconds


def parse_block(fields: dict[str, str]) -> ProgressBlock:
    return ProgressBlock(
        frame=_int(fields.get("frame")),
        fps=_float(fields.get("fps")),
        bitrate_bps=_bitrate_bps(fields.get("bitrate")),
        total_size_bytes=_int(fields.get("total_size")),
        out_time_s=_out_time_s(fields),
        dup_frames=_int(fields.get("dup_frames")),
        drop_frames=_int(fields.get("drop_frames")),
        speed_ratio=_speed(fields.get("speed")),
        ended=fields.get("progress", "").strip() == "end",
    )


class ProgressParser:
    """Bytes in (cut anywhere), complete blocks out. Raises ProtocolError on input that is not -progress."""

    def __init__(self) -> None:
        self._buffer = b""
        self._fields: dict[str, str] = {}
        self.ignored_lines = 0

    def feed(self, data: bytes) -> list[ProgressBlock]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE_BYTES:
            raise ProtocolError("not ffmpeg -progress output: a line longer than 4096 bytes")
        blocks = []
        for raw in lines:
            block = self._line(raw)
            if block is not None:
                blocks.append(block)
        return blocks

    def _line(self, raw: bytes) -> ProgressBlock | None:
        if len(raw) > MAX_LINE_BYTES:
            raise ProtocolError("not ffmpeg -progress output: a line longer than 4096 bytes")
        line = raw.decode("utf-8", errors="replace").strip()
        key, sep, value = line.partition("=")
        if not sep or not key:
            if line:
                self.ignored_lines += 1
            return None
        self._fields[key.strip()] = value
        if len(self._fields) > MAX_BLOCK_KEYS:
            raise ProtocolError("not ffmpeg -progress output: a block without a progress= line")
        if key.strip() != "progress":
            return None
        block = parse_block(self._fields)
        self._fields = {}
        return block

    @property
    def partial(self) -> bool:
        """A block was begun but not ended (ffmpeg was killed mid-block, or more is coming)."""
        return bool(self._fields or self._buffer.strip())


@dataclass(frozen=True)
class _Point:
    at: float
    frame: int
    drop_frames: int
    out_time_s: float | None


class ProgressTracker:
    """Successive blocks of one ffmpeg run (or several, one after another) -> `FfmpegSample`s."""

    def __init__(self, via: Via, window_s: float = 10.0) -> None:
        self.via: Via = via
        self.window_s = window_s
        self._window: deque[_Point] = deque()
        self.last_block_at: float | None = None
        self.ended = False
        self.runs = 0

    def update(self, now: float, block: ProgressBlock, taken_at: datetime | None = None) -> FfmpegSample:
        point = _Point(now, block.frame or 0, block.drop_frames or 0, block.out_time_s)
        last = self._window[-1] if self._window else None
        if last is None or self.ended or point.frame < last.frame or point.drop_frames < last.drop_frames:
            self._window.clear()  # a new ffmpeg run: a new baseline
            self.runs += 1
        self._window.append(point)
        while len(self._window) > 2 and self._window[1].at <= now - self.window_s:
            self._window.popleft()
        oldest = self._window[0]
        dropped = point.drop_frames - oldest.drop_frames
        offered = (point.frame - oldest.frame) + dropped
        self.last_block_at, self.ended = now, block.ended
        return FfmpegSample(
            taken_at=taken_at or utc_now(),
            frame=block.frame,
            fps=block.fps,
            bitrate_bps=block.bitrate_bps,
            total_size_bytes=block.total_size_bytes,
            out_time_s=block.out_time_s,
            dup_frames_total=block.dup_frames,
            drop_frames_total=block.drop_frames,
            frames_dropped_ratio_10s=round(dropped / offered, 5) if offered > 0 else None,
            speed_ratio=block.speed_ratio,
            speed_ratio_10s=self._recent_speed(point, oldest),
            ended=block.ended,
            via=self.via,
        )

    @staticmethod
    def _recent_speed(point: _Point, oldest: _Point) -> float | None:
        elapsed = point.at - oldest.at
        if elapsed < 0.5 or point.out_time_s is None or oldest.out_time_s is None:
            return None
        return round(max(0.0, point.out_time_s - oldest.out_time_s) / elapsed, 3)

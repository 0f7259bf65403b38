"""The "be right back" slate: one per stream shape, made in a subprocess, kept in the data folder.

While the encoder is gone (hold.py) the relay sends a still picture and silence shaped like the stream
the ingest has seen (stream_shape.py), so the platform keeps the broadcast. Making one costs PyAV's memory
and a fraction of a second, so it is made as soon as a stream's shape is known, not when the encoder is
lost, in its own process (slate_maker.py), and the file is reused for every later stream of that shape.
What the relay holds in memory is the file's few kB: one GOP of video and one frame of silence.
H.264 slates are x264's, HEVC slates x265's (Main or Main 10), in the FLV form the stream came in.
Not for deciding when to hold (relay.py) or pacing the frames (hold.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.errors import ProtocolError
from agent.relay.frames import FrameClassifier, FrameKind
from agent.relay.stream_shape import StreamShape
from agent.rtmp import messages as m
from agent.rtmp.flv import TAG_AUDIO, TAG_VIDEO, read_flv

log = logging.getLogger(__name__)

MAKE_TIMEOUT_S: Final = 60.0
SLATE_FORMAT: Final = "3"  # part of the cache key: bump when slate_maker's output changes


@dataclass(frozen=True, slots=True)
class Slate:
    """One slate as the relay sends it: the sequence headers, one GOP of video (keyframe first), and one
    frame of silence the player repeats."""

    shape: StreamShape
    video_header: bytes = field(repr=False)
    audio_header: bytes | None = field(repr=False)
    gop: tuple[bytes, ...] = field(repr=False)
    gop_kinds: tuple[FrameKind, ...]
    silence: bytes | None = field(repr=False)

    @property
    def size_bytes(self) -> int:
        return (
            len(self.video_header) + sum(map(len, self.gop)) + len(self.silence or b"") + len(self.audio_header or b"")
        )


def load_slate(shape: StreamShape, data: bytes) -> Slate:
    """A slate from the FLV file slate_maker.py wrote. Raises ProtocolError if it is not one."""
    classifier = FrameClassifier()
    codec = shape.video.codec
    video_header = audio_header = silence = None
    gop: list[bytes] = []
    kinds: list[FrameKind] = []
    for tag in read_flv(data):
        if tag.tag_type == TAG_VIDEO:
            kind, tag_codec = classifier.video(tag.data)
            if tag_codec != codec:
                raise ProtocolError(f"the slate file's video is {tag_codec}, the stream's {codec}")
            if kind is FrameKind.SEQUENCE_HEADER:
                video_header = tag.data
            elif kind.droppable:
                gop.append(tag.data)
                kinds.append(kind)
        elif tag.tag_type == TAG_AUDIO:
            kind, _ = classifier.classify(m.AUDIO, tag.data)
            if kind is FrameKind.SEQUENCE_HEADER:
                audio_header = tag.data
            else:
                silence = tag.data  # the last one: the encoder has settled
    if video_header is None or not gop or kinds[0] is not FrameKind.VIDEO_KEY or FrameKind.VIDEO_KEY in kinds[1:]:
        raise ProtocolError(f"the slate file holds no single GOP of {codec} with its sequence header")
    if (shape.audio is not None) != (audio_header is not None and silence is not None):
        raise ProtocolError("the slate file's audio does not match the stream's")
    return Slate(shape, video_header, audio_header, tuple(gop), tuple(kinds), silence)


def slate_unavailable_reason(hold_s: float) -> str | None:
    """Why no slate can ever be sent (said at start-up), or None when one can be made."""
    if hold_s <= 0:
        return "disconnect protection is off (relay.hold_s = 0): a lost encoder ends the stream"
    if importlib.util.find_spec("av") is None:
        return "no slate can be made: PyAV is not installed (pip install av); a lost encoder ends the stream"
    return None


def image_digest(image: Path | None) -> str:
    """What of the user's picture goes into the cache key: its bytes, so a new picture makes a new slate."""
    if image is None:
        return SLATE_FORMAT
    try:
        return SLATE_FORMAT + hashlib.sha256(image.read_bytes()).hexdigest()
    except OSError:
        return SLATE_FORMAT + "unreadable"


@dataclass
class MakeReport:
    """What making one slate cost (for the log and bench/slate.py)."""

    seconds: float
    bytes: int
    peak_rss_bytes: int | None


MakerCommand = Callable[[StreamShape, Path, Path | None], list[str]]


def maker_command(shape: StreamShape, out: Path, image: Path | None) -> list[str]:
    command = [sys.executable, "-m", "agent.relay.slate_maker", shape.to_json(), str(out)]
    return command + ([str(image)] if image is not None else [])


class SlateCache:
    """Slates by stream shape: in memory once loaded, on disk in `folder` once made."""

    def __init__(self, folder: Path, image: Path | None = None, *, command: MakerCommand = maker_command) -> None:
        self.folder = folder
        self.image = image
        self._command = command
        self._digest = image_digest(image)
        self._slates: dict[StreamShape, Slate] = {}
        self._making: dict[StreamShape, asyncio.Task[Slate | None]] = {}
        self.failures: dict[StreamShape, str] = {}
        self.last_report: MakeReport | None = None

    @property
    def loaded(self) -> int:
        """How many slates are in memory, ready to send."""
        return len(self._slates)

    def ready(self, shape: StreamShape) -> Slate | None:
        return self._slates.get(shape)

    def path(self, shape: StreamShape) -> Path:
        return self.folder / f"{shape.key(self._digest)}.flv"

    def prepare(self, shape: StreamShape) -> asyncio.Task[Slate | None] | None:
        """Start making (or loading) the slate for `shape` unless it is ready or under way."""
        if shape in self._slates or shape in self.failures:
            return None
        task = self._making.get(shape)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._get(shape), name="relay-slate")
            self._making[shape] = task
            task.add_done_callback(lambda _: self._making.pop(shape, None))
        return task

    async def get(self, shape: StreamShape, timeout_s: float) -> Slate | None:
        """The slate for `shape`, waiting up to `timeout_s` for one under way; None if there is none."""
        slate = self._slates.get(shape)
        if slate is not None:
            return slate
        task = self.prepare(shape)
        if task is None:
            return self._slates.get(shape)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(task), timeout_s)
        return None

    async def close(self) -> None:
        """Stop making slates (the relay is closing)."""
        tasks = list(self._making.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _get(self, shape: StreamShape) -> Slate | None:
        path = self.path(shape)
        try:
            if not path.is_file():
                await self._make(shape, path)
            slate = load_slate(shape, await asyncio.to_thread(path.read_bytes))
        except (OSError, ProtocolError, RuntimeError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            self.failures[shape] = reason
            log.warning("relay: no slate for %s: %s", shape.describe(), reason)
            return None
        self._slates[shape] = slate
        return slate

    async def _make(self, shape: StreamShape, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        process = await asyncio.create_subprocess_exec(
            *self._command(shape, path, self.image),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(MAKE_TIMEOUT_S):
                out, err = await process.communicate()
        except TimeoutError:
            await _kill(process)
            raise TimeoutError(f"making the slate took over {MAKE_TIMEOUT_S:g} s") from None
        except asyncio.CancelledError:  # the relay is closing: no maker outlives it
            await _kill(process)
            raise
        if process.returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {process.returncode}"]
            raise RuntimeError(f"making the slate failed: {last[0][:300]}")
        try:
            report = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            report = {}
        self.last_report = MakeReport(
            round(loop.time() - started, 3), int(report.get("bytes") or 0), report.get("peak_rss_bytes")
        )
        peak = self.last_report.peak_rss_bytes
        log.info(
            "relay: made the slate for %s in %.2f s (%d bytes; the maker's peak memory %s)",
            shape.describe(),
            self.last_report.seconds,
            self.last_report.bytes,
            f"{peak / 1e6:.0f} MB" if peak else "unknown",
        )


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

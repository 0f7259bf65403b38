"""The ffmpeg source: ffmpeg's `-progress` output, from a file it writes or pushed to the agent over HTTP.

A push source: blocks arrive when ffmpeg writes them (about once a second with `-stats_period 1`), each
becomes an `FfmpegSample` (see `agent.ffmpeg.progress`). `open_feed()` is how the HTTP route (and anything
else that receives progress bytes) hands them in; `run()` follows `sources.ffmpeg.progress_file` if set and
watches for ffmpeg going silent: an encoder whose output is blocked stops reporting, which is itself the
symptom ("no progress for N s"). It does not start or find ffmpeg (`streamhealth run` starts it; the
system source finds the process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.beat import sleep_until_next_beat
from agent.errors import ProtocolError
from agent.ffmpeg.progress import ProgressParser, ProgressTracker, Via
from agent.settings import FfmpegSourceSettings
from agent.sources.base import SampleSink, Source

log = logging.getLogger(__name__)

MAX_READ_BYTES = 64 * 1024


@dataclass
class ProgressFeed:
    """One stream of progress bytes (a file, an HTTP body, the wrapper's socket) going to the sink."""

    tracker: ProgressTracker
    sink: SampleSink
    source_name: str
    clock: Callable[[], float]
    parser: ProgressParser = field(default_factory=ProgressParser)
    blocks: int = 0
    on_progress: Callable[[], None] = lambda: None  # the uplink source looks for the stream's connection

    def feed(self, data: bytes) -> int:
        """Parse `data` and publish a sample per complete block; ProtocolError if it is not -progress."""
        published = 0
        for block in self.parser.feed(data):
            self.sink.publish(self.source_name, self.tracker.update(self.clock(), block))
            published += 1
        self.blocks += published
        if published:
            self.on_progress()
        return published

    def restart(self) -> None:
        """The producer started over (the file was truncated or replaced): forget the half-read block."""
        self.parser = ProgressParser()


class FfmpegSource(Source):
    waits_for_peer = True  # it reports while an ffmpeg runs; none may run for hours
    name = "ffmpeg"

    def __init__(self, settings: FfmpegSourceSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval_s=1.0, timeout_s=settings.stale_after_s)
        self.settings = settings
        self.clock = clock
        self._trackers: dict[Via, ProgressTracker] = {}
        self._silent_reported: set[Via] = set()
        self.on_progress: Callable[[], None] = lambda: None  # wired by build_sources to the uplink's search
        self._fed = asyncio.Event()  # set once a feed opens: until then there is no silence to watch

    @property
    def stale_after_s(self) -> float:
        return self.settings.stale_after_s

    def open_feed(self, via: Via, sink: SampleSink) -> ProgressFeed:
        """A feed for progress arriving `via` a file, the wrapper or HTTP; one tracker per way in."""
        tracker = self._trackers.setdefault(via, ProgressTracker(via, self.settings.window_s))
        self._silent_reported.discard(via)
        self._fed.set()
        return ProgressFeed(tracker, sink, self.name, self.clock, on_progress=self.on_progress)

    async def run(self, sink: SampleSink) -> None:
        watch = asyncio.create_task(self._watch_silence(sink), name="ffmpeg silence watch")
        try:
            if self.settings.progress_file is not None:
                await self._follow_file(self.settings.progress_file, sink)
            else:
                await watch
        finally:
            watch.cancel()

    async def _watch_silence(self, sink: SampleSink) -> None:
        """Say so when ffmpeg stops reporting without `progress=end`: stalled, blocked or killed."""
        await self._fed.wait()  # no wake-ups while no ffmpeg has ever reported (most of an idle day)
        while True:
            await sleep_until_next_beat(self.interval_s)
            now = self.clock()
            for via, tracker in self._trackers.items():
                last = tracker.last_block_at
                if last is None or tracker.ended:
                    continue
                silent_s = now - last
                if silent_s > self.settings.stale_after_s:
                    sink.report_failure(
                        self.name,
                        f"no progress from ffmpeg ({via}) for {silent_s:.0f} s without progress=end: "
                        "ffmpeg is stalled (output blocked by a slow uplink?) or was killed",
                    )
                    if via not in self._silent_reported:
                        self._silent_reported.add(via)
                        log.warning("ffmpeg (%s) stopped reporting progress %.0f s ago", via, silent_s)
                else:
                    self._silent_reported.discard(via)

    async def _follow_file(self, path: Path, sink: SampleSink) -> None:
        """Tail `path` like `tail -F`: wait for it, read what is appended, start over when it is replaced."""
        feed = self.open_feed("file", sink)
        identity: tuple[int, int] | None = None
        position = 0
        waiting_reported = False
        while True:
            try:
                stat = os.stat(path)  # a local file: a thread trip would cost more than the call
            except FileNotFoundError:
                if not waiting_reported:
                    sink.report_failure(self.name, f"waiting for ffmpeg to write -progress {path}")
                    waiting_reported = True
                identity = None
                await sleep_until_next_beat(self.settings.file_poll_interval_s)
                continue
            except OSError as exc:
                sink.report_failure(self.name, f"cannot read sources.ffmpeg.progress_file {path}: {exc.strerror}")
                await asyncio.sleep(max(self.settings.file_poll_interval_s, 5.0))
                continue
            waiting_reported = False
            current = (stat.st_dev, stat.st_ino)
            if current != identity or stat.st_size < position:
                identity, position = current, 0  # a new file or truncated: ffmpeg started again
                feed.restart()
            if stat.st_size > position:
                data = await asyncio.to_thread(_read_from, path, position, MAX_READ_BYTES)
                position += len(data)
                try:
                    feed.feed(data)
                except ProtocolError as exc:
                    sink.report_failure(self.name, f"{path}: {exc}; skipping to its end")
                    feed.restart()
                    position = stat.st_size
                if len(data) == MAX_READ_BYTES:
                    continue  # more is waiting: read it now
            await sleep_until_next_beat(self.settings.file_poll_interval_s)


def _read_from(path: Path, position: int, limit: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(position)
        return handle.read(limit)

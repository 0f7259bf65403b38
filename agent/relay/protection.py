"""Disconnect protection's state for the relay: the slate for the stream's shape, the hold in progress, the
time held, and why no slate can be had when that is so.

The relay (relay.py) decides when to hold, when an encoder takes over and when the broadcast ends; this
keeps what those decisions need, so relay.py stays about the connections. Not for pacing the slate
(hold.py) or making it (slate.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from agent.relay.failover import ms_before
from agent.relay.frames import Frame, HeaderCache
from agent.relay.hold import Hold
from agent.relay.settings import RelaySettings
from agent.relay.slate import Slate, SlateCache, slate_unavailable_reason
from agent.relay.stream_shape import NoSlate, shape_of

log = logging.getLogger("agent.relay.relay")

SHAPE_SETTLE_S: Final = 0.5  # after a video sequence header, the audio one and metadata follow: then make the slate
SLATE_WAIT_S: Final = 3.0  # an encoder lost while its slate is still being made: wait this long for it
# The slate's first picture is shown a frame time after the latest picture the encoder sent, and comes at
# least this many frame times after its last timestamp (for pictures whose display time is not read).
SLATE_GAP_FRAMES: Final = 3


class Protection:
    def __init__(self, settings: RelaySettings, slate_dir: Path, clock: Callable[[], float]) -> None:
        self.hold_s = settings.hold_s
        self._clock = clock
        # Said at start-up when it can never work; else slates by stream shape, made ahead of need.
        self.start_note = slate_unavailable_reason(settings.hold_s)
        self.slates = SlateCache(slate_dir, settings.slate_image) if self.start_note is None else None
        self.stream_note: str | None = None  # why this stream's shape has no slate
        self._shape_timer: asyncio.TimerHandle | None = None
        self.hold: Hold | None = None
        self._task: asyncio.Task[None] | None = None
        self._held_before_s = 0.0  # earlier holds of this broadcast
        self.frames_sent_total = 0

    # ------------------------------------------------------------------------------- what it says

    def note(self) -> str | None:
        """Why no slate would be sent if the encoder were lost now, when that is so."""
        return self.start_note or self.stream_note

    def remaining_s(self) -> float | None:
        hold = self.hold
        return None if hold is None else hold.remaining_s()

    def held_total_s(self) -> float:
        """Seconds the current (or last) broadcast was held with the slate."""
        hold = self.hold
        return self._held_before_s + (hold.held_s() if hold is not None else 0.0)

    # ------------------------------------------------------------------------------------ slates

    def new_broadcast(self) -> None:
        self._held_before_s = 0.0
        self.stream_note = None

    def headers_changed(self, headers: HeaderCache) -> None:
        """New sequence headers: make (or load) the slate for the stream's shape now, so it is ready before
        the encoder is lost. Once the audio header and metadata that follow have arrived."""
        if self.slates is not None and self._shape_timer is None:
            loop = asyncio.get_running_loop()
            self._shape_timer = loop.call_later(SHAPE_SETTLE_S, self._prepare, headers)

    def _prepare(self, headers: HeaderCache) -> None:
        self._shape_timer = None
        if self.slates is None or self.hold is not None:  # while held, the cache holds the slate's headers
            return
        try:
            shape = shape_of(headers)
        except NoSlate as exc:
            note = f"no slate for this stream: {exc}; a lost encoder ends the stream"
            if note != self.stream_note:  # once per stream and reason: a publisher repeating headers floods nothing
                log.warning("relay: %s", note)
            self.stream_note = note
            return
        self.stream_note = None
        self.slates.prepare(shape)

    async def slate_for(self, headers: HeaderCache) -> Slate | None:
        """The slate for the stream the ingest has seen, or None (and why, in `stream_note`)."""
        if self.slates is None:
            return None
        try:
            shape = shape_of(headers)
        except NoSlate as exc:
            self.stream_note = f"no slate for this stream: {exc}; a lost encoder ends the stream"
            return None
        slate = self.slates.ready(shape) or await self.slates.get(shape, SLATE_WAIT_S)
        if slate is None:
            failure = self.slates.failures.get(shape, "it was not ready in time")
            self.stream_note = f"no slate for this stream: {failure}"
        return slate

    @staticmethod
    def continue_at_ms(slate: Slate, last_ms: list[int | None], latest_display_ms: int | None) -> int:
        """Where the slate starts (on the 32-bit RTMP clock): after the last frame the encoder sent
        (`last_ms`: its video and audio timestamps) and a frame time after the latest display time of its
        pictures. With B-frames a picture sent last can be shown several frames after its timestamp (OBS:
        up to 5 at 30 fps); a slate shown in the same frame time would be a second picture in that slot,
        which a decoder re-timing to the frame rate refuses ("non monotonically increasing dts")."""
        video = slate.shape.video
        frame_ms = 1000 * video.fps_den / video.fps_num
        candidates = [(ts + round(SLATE_GAP_FRAMES * frame_ms)) & 0xFFFFFFFF for ts in last_ms if ts is not None]
        if latest_display_ms is not None:
            candidates.append((latest_display_ms + round(frame_ms)) & 0xFFFFFFFF)
        if not candidates:
            return round(SLATE_GAP_FRAMES * frame_ms)
        latest = candidates[0]
        for ts in candidates[1:]:
            if ms_before(latest, ts):
                latest = ts
        return latest

    # ------------------------------------------------------------------------------------- holds

    def start(
        self,
        slate: Slate,
        start_ms: int,
        send: Callable[[Frame], None],
        run: Callable[[Hold], Coroutine[Any, Any, None]],
    ) -> asyncio.Task[None]:
        """Hold with `slate` from `start_ms`; `run(hold)` is the task (it plays the hold, then acts on its end)."""
        hold = Hold(slate, start_ms=start_ms, hold_s=self.hold_s, send=self._counted(send), clock=self._clock)
        self.hold = hold
        self._task = asyncio.create_task(run(hold), name="relay-hold")
        return self._task

    def _counted(self, send: Callable[[Frame], None]) -> Callable[[Frame], None]:
        def counted(frame: Frame) -> None:
            self.frames_sent_total += 1
            send(frame)

        return counted

    def finish(self) -> Hold | None:
        """End the hold in progress (the encoder is back, a clean stop, its time ran out): its time is
        counted, its task stops sending. Returns it, or None if there was none."""
        hold, self.hold = self.hold, None
        if hold is None:
            return None
        hold.stop()
        self._held_before_s += hold.held_s()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        return hold

    async def close(self) -> None:
        """The relay is closing: no slate is made any more."""
        if self._shape_timer is not None:
            self._shape_timer.cancel()
            self._shape_timer = None
        if self.slates is not None:
            await self.slates.close()

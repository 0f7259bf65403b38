"""Deciding when an ingest connection is lost, which ingest to try next, and what the stream lost meanwhile.

No sockets here except the primary probe: `destination.py` feeds readings in and acts on the answers.
- `AckWatch`: the stall rule. A connection that takes no acknowledgement for `stall_s` while media waits is
  lost, even though no RST ever comes (a cut link, a NAT that forgot us). It reads the kernel's view
  (TCP_INFO bytes_acked) where there is one, else how much the kernel took from us.
- `IngestRotation`: reconnect to the same ingest with backoff; after `failover_after_s` without success,
  the next of the list, round it.
- `SentLedger`: which frames went to a connection, so that on loss the ones never acknowledged are known.
- `PrimaryProbe`: while on a backup, whether the primary has answered for `return_after_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from agent.backoff import Backoff
from agent.models import IngestSwitch
from agent.models.base import utc_now
from agent.models.relay import IngestSwitchKind
from agent.rtmp.client import parse_rtmp_url

FIRST_RETRY_S: Final = 0.25
MAX_BACKOFF_S: Final = 10.0
PROBE_INTERVAL_S: Final = 1.0
# The shortest connection attempt: enough for a TCP + RTMP handshake, connect and publish on a sound link
# (a few round trips), short enough not to hold the failover far past failover_after_s.
MIN_ATTEMPT_S: Final = 0.5
LEDGER_FRAMES: Final = 8192  # ~2 min of 30 fps video + audio: more than any kernel buffer holds

ReturnPolicy = Literal["never", "after_probe"]


@dataclass(frozen=True, slots=True)
class Resilience:
    """The settings behind this module, as `destination.py` needs them."""

    stall_s: float = 3.0
    failover_after_s: float = 3.0
    return_to_primary: ReturnPolicy = "never"
    return_after_s: float = 30.0


def ms_before(earlier: int, later: int) -> bool:
    """`earlier` comes before `later` on the 32-bit RTMP clock (it wraps after 49 days)."""
    return 0 < (later - earlier) & 0xFFFFFFFF < 0x80000000


@dataclass(slots=True)
class Outage:
    """From losing a connection to the next one publishing: what the switch record needs."""

    from_index: int
    reason: str
    lost_at_s: float  # monotonic
    lost_at: datetime
    dropped_before: int
    unacked_ms: list[int]  # media frames sent to the lost connection, never acknowledged, not sent again
    last_acked_media_ms: int | None
    planned: bool = False

    def switch(
        self, *, destination: str, names: list[str], to_index: int, dropped_now: int, resume_ms: int | None,
        now_s: float,
    ) -> IngestSwitch:  # fmt: skip
        """The record of this outage once the connection at `to_index` publishes, resuming at `resume_ms`."""
        lost_frames = len(self.unacked_ms) + dropped_now - self.dropped_before
        outage_ms = round((now_s - self.lost_at_s) * 1000, 1)
        lost_media_ms = 0.0
        if lost_frames:
            start_ms = self.last_acked_media_ms
            if start_ms is None and self.unacked_ms:
                start_ms = self.unacked_ms[0]
            if start_ms is not None and resume_ms is not None:
                lost_media_ms = float((resume_ms - start_ms) & 0xFFFFFFFF) if ms_before(start_ms, resume_ms) else 0.0
            else:  # nothing to go by but the clock
                lost_media_ms = outage_ms
        kind: IngestSwitchKind = (
            "return" if self.planned else "reconnect" if self.from_index == to_index else "failover"
        )
        return IngestSwitch(
            destination=destination,
            kind=kind,
            from_ingest=names[self.from_index],
            to_ingest=names[to_index],
            reason=self.reason,
            lost_at=self.lost_at,
            at=utc_now(),
            outage_ms=outage_ms,
            lost_media_ms=lost_media_ms,
            lost_frames=lost_frames,
        )


def ingest_name(url: str) -> str:
    """host:port, what we may show of an ingest (never its key or full URL)."""
    parsed = parse_rtmp_url(url)
    return f"{parsed.host}:{parsed.port}"


def destination_names(groups: list[list[str]]) -> list[str]:
    """Each destination's name: the host:port of its first ingest, "#2", "#3"... added when two share one."""
    names: list[str] = []
    for urls in groups:
        base = ingest_name(urls[0])
        name, count = base, 1
        while name in names:
            count += 1
            name = f"{base}#{count}"
        names.append(name)
    return names


class IngestLost(Exception):
    """The connection to the ingest is no longer usable (stalled, or closed by the ingest)."""


class AckWatch:
    """The stall rule: `observe` returns True once nothing was acknowledged for `stall_s` while data waited."""

    def __init__(self, stall_s: float, now_s: float) -> None:
        self.stall_s = stall_s
        self._acked: int | None = None
        self._progress_at_s = now_s

    def observe(self, acked_bytes: int, pending: bool, now_s: float, ack_age_s: float | None = None) -> bool:
        """`ack_age_s`: how long ago the kernel saw the last ACK (TCP_INFO), so progress is dated when it
        happened, not when the watch looked (up to a beat later): the stall is then judged on time."""
        if self._acked is None or not pending:
            self._progress_at_s = now_s
        elif acked_bytes != self._acked:
            at_s = now_s if ack_age_s is None else now_s - ack_age_s
            self._progress_at_s = max(self._progress_at_s, min(at_s, now_s))
        self._acked = acked_bytes
        return now_s - self._progress_at_s > self.stall_s

    def waited_s(self, now_s: float) -> float:
        return now_s - self._progress_at_s

    @property
    def stalled_at_s(self) -> float:
        """When the rule will say "stalled" if no progress is seen before: the watch looks then, not a beat later."""
        return self._progress_at_s + self.stall_s


class SentLedger:
    """The frames written to one connection, with where they end in its byte stream."""

    def __init__(self) -> None:
        # Per frame written: (chunk-stream bytes sent on this connection once it was, timestamp, media?).
        self._sent: deque[tuple[int, int, bool]] = deque(maxlen=LEDGER_FRAMES)
        self.acked_offset = 0  # chunk-stream bytes the ingest is known to have
        self.last_acked_media_ms: int | None = None

    def wrote(self, end_offset: int, timestamp_ms: int, media: bool) -> None:
        self._sent.append((end_offset, timestamp_ms, media))

    def acked(self, offset: int) -> None:
        self.acked_offset = max(self.acked_offset, offset)
        while self._sent and self._sent[0][0] <= self.acked_offset:
            _, timestamp_ms, media = self._sent.popleft()
            if media:
                self.last_acked_media_ms = timestamp_ms

    def unacknowledged(self) -> list[int]:
        """Timestamps of the media frames written but not acknowledged."""
        return [timestamp_ms for end, timestamp_ms, media in self._sent if media and end > self.acked_offset]


class IngestRotation:
    """Which ingest to connect to next, and when.

    The same ingest is retried with backoff (0.25 s, 0.5 s, 1 s, ... capped, jittered: agent/backoff.py)
    for `failover_after_s` from the first failure; then the next one in the list gets its turn, round the
    list. A success resets the clock. A new stream starts again from the first ingest.
    """

    def __init__(
        self,
        urls: list[str],
        failover_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if not urls:
            raise ValueError("a destination needs at least one ingest URL")
        self.urls = urls
        self.names = [ingest_name(url) for url in urls]
        self.failover_after_s = failover_after_s
        self._clock = clock
        self.index = 0
        self._failing_since: float | None = None
        self._backoff = Backoff(FIRST_RETRY_S, MAX_BACKOFF_S, random_fraction=random_fraction)
        self._backoff_s = 0.0  # drawn once per failure: delay_s() may be asked more than once

    @property
    def url(self) -> str:
        return self.urls[self.index]

    @property
    def name(self) -> str:
        return self.names[self.index]

    @property
    def on_backup(self) -> bool:
        return self.index != 0

    def restart(self) -> None:
        self.index = 0
        self.succeeded()

    def succeeded(self) -> None:
        self._failing_since = None
        self._backoff.reset()
        self._backoff_s = 0.0

    def failed(self) -> None:
        if self._failing_since is None:
            self._failing_since = self._clock()
        self._backoff_s = self._backoff.next_s()

    def go_to(self, index: int) -> None:
        self.index = index % len(self.urls)
        self._backoff.reset()
        self._backoff_s = 0.0
        self._failing_since = self._clock()

    def choose(self) -> bool:
        """Before an attempt: move to the next ingest if this one has had its time. True if it moved."""
        since = self._failing_since
        if since is None or len(self.urls) == 1 or self._clock() - since < self.failover_after_s:
            return False
        self.go_to(self.index + 1)
        return True

    def delay_s(self) -> float:
        """How long to wait before the next attempt: backoff, but never past the moment to fail over."""
        backoff = self._backoff_s
        if backoff == 0.0:
            return 0.0
        if self._failing_since is not None and len(self.urls) > 1:
            until_failover = self._failing_since + self.failover_after_s - self._clock()
            backoff = min(backoff, max(until_failover, 0.0))
        return backoff

    def attempt_timeout_s(self, default_s: float, silent_s: float | None = None) -> float:
        """A connection attempt may not hold up the failover (a silent host never refuses): with a backup to
        go to, a first attempt gets `silent_s` (relay.stall_s, as a silent connection would), later ones
        what is left until the failover (at least MIN_ATTEMPT_S)."""
        if len(self.urls) == 1:
            return default_s
        if self._failing_since is None:
            return default_s if silent_s is None else min(default_s, silent_s)
        left = self._failing_since + self.failover_after_s - self._clock()
        return min(default_s, max(left, MIN_ATTEMPT_S))


class PrimaryProbe:
    """While on a backup: TCP-connects to the primary every second; `due` once it answered every probe
    for `return_after_s`."""

    def __init__(self, url: str, return_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        parsed = parse_rtmp_url(url)
        self.host, self.port = parsed.host, parsed.port
        self.return_after_s = return_after_s
        self._clock = clock
        self.answering_since: float | None = None

    @property
    def due(self) -> bool:
        since = self.answering_since
        return since is not None and self._clock() - since >= self.return_after_s

    async def run(self) -> None:
        while True:
            answered = await self.probe_once()
            if not answered:
                self.answering_since = None
            elif self.answering_since is None:
                self.answering_since = self._clock()
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def probe_once(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_INTERVAL_S):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(PROBE_INTERVAL_S):
                await writer.wait_closed()
        return True

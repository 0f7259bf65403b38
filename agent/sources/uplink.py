"""The uplink source: the encoder's ingest connection seen by the kernel (sock_diag tcp_info), at 4 Hz.

While no stream is live it looks for the connection every few seconds (agent/net/encoder_connection.py,
in a thread); once found it reads that one connection, filtered in the kernel, every `interval_s` (well
under a millisecond a read, on the event loop) and feeds an `UplinkTracker`, which decides the early
warning. Elsewhere than Linux it publishes one "unavailable" sample now and then, and nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from agent.beat import next_beat, sleep_until_next_beat
from agent.models import EncoderSettings
from agent.models.uplink import UplinkSample
from agent.net.addresses import is_loopback_host
from agent.net.encoder_connection import ConnectionFinder, Destination, IngestConnection, destination_from_url
from agent.net.sockdiag import SockDiagError
from agent.net.sockdiag_reader import SockDiagReader, unavailable_reason
from agent.net.uplink_tracker import UplinkTracker
from agent.settings import IngestSettings, StreamSettings, UplinkSourceSettings
from agent.sources.base import SampleSink, Source

log = logging.getLogger(__name__)

UNAVAILABLE_REPEAT_S = 10.0
DEFAULT_AUDIO_KBPS = 160
NUDGE_MIN_GAP_S = 1.0  # searches asked for by encoders' reports: at most one a second


class UplinkSource(Source):
    name = "uplink"

    def __init__(
        self,
        settings: UplinkSourceSettings,
        ingest: IngestSettings,
        stream: StreamSettings | None = None,
        *,
        obs_settings: Callable[[], EncoderSettings | None] = lambda: None,
        encoder_running: Callable[[], bool | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval_s=settings.interval_s, timeout_s=1.0)
        self.settings = settings
        self.ingest = ingest
        self.stream = stream or StreamSettings()
        self.obs_settings = obs_settings
        # The system source's answer to "does an OBS or ffmpeg process run?" (None: nobody knows): while it
        # is no, the search asks the kernel about the known destinations only, not every process's sockets.
        self.encoder_running = encoder_running
        self.clock = clock
        self.connection: IngestConnection | None = None
        self.tracker: UplinkTracker | None = None
        self.latest: UplinkSample | None = None  # read by the OBS source's backup plan
        self._searching_said_at = -float("inf")
        self._nudged: asyncio.Event | None = None
        self._searched_at = -float("inf")

    def search_now(self) -> None:
        """An encoder just started sending (ffmpeg's progress, OBS streaming): look at once rather than at
        the next search, so its connection is read, and its queue known, from the stream's first seconds.
        Nothing happens while a connection is being read."""
        if self.connection is None and self._nudged is not None:
            self._nudged.set()  # and this search looks at processes whatever the system source last saw

    @property
    def stale_after_s(self) -> float:
        return max(3 * self.settings.discover_interval_s, UNAVAILABLE_REPEAT_S * 2)

    def destinations(self) -> list[Destination]:
        """Where the encoder sends: OBS's own server first (when OBS told us), then ingest.primary."""
        found: list[Destination] = []
        encoder = self.obs_settings()
        obs_server = destination_from_url(encoder.server if encoder else None, "obs")
        if obs_server is not None:
            found.append(obs_server)
        primary = destination_from_url(self.ingest.primary, "ingest")
        if primary is not None and all(primary.name != known.name for known in found):
            # OBS streaming to this machine (the relay) is not on the uplink when the ingest is elsewhere: the
            # relay's connection to it is, and its congestion is the early warning. OBS's loopback connection
            # is left out: found first (before the relay has connected to the ingest), it was read for the
            # whole stream, and the cut went unseen (in one alert-trust run through the relay).
            if obs_server is not None and is_loopback_host(obs_server.host) and not is_loopback_host(primary.host):
                found = [primary]
            else:
                found.append(primary)
        return found

    def _bitrates(self) -> tuple[float, int | None]:
        encoder = self.obs_settings()
        audio_kbps = (encoder.audio_bitrate_kbps if encoder else None) or self.stream.audio_bitrate_kbps
        video_kbps = (encoder.video_bitrate_kbps if encoder else None) or self.stream.video_bitrate_kbps
        return (audio_kbps or DEFAULT_AUDIO_KBPS) * 1000.0, video_kbps

    async def run(self, sink: SampleSink) -> None:
        reason = unavailable_reason()
        if reason is not None:
            while True:
                sink.publish(self.name, UplinkSample(state="unavailable", note=reason))
                self.latest = None
                await sleep_until_next_beat(UNAVAILABLE_REPEAT_S)
        reader, finder_reader = SockDiagReader(), SockDiagReader()
        finder = ConnectionFinder(finder_reader, encoder_processes=self.settings.find_encoder_processes)
        try:
            while True:
                if self.connection is None:
                    await self._discover(finder, sink)
                    continue
                self._read_once(reader, sink)
                await sleep_until_next_beat(self.settings.interval_s, self.clock)
        finally:
            reader.close()
            finder_reader.close()

    async def _discover(self, finder: ConnectionFinder, sink: SampleSink) -> None:
        destinations = self.destinations()
        try:
            # Only a name to resolve needs a worker thread (DNS may block); otherwise the look is a few
            # reads of /proc and sock_diag, cheaper on the loop than a thread trip (one more wake-up).
            nudged = self._nudged is not None and self._nudged.is_set()
            self._searched_at = self.clock()
            may_run = nudged or self.encoder_running() is not False
            if finder.needs_resolving(destinations):
                found = await asyncio.to_thread(finder.find, destinations, encoders_may_run=may_run)
            else:
                found = finder.find(destinations, encoders_may_run=may_run)
        except SockDiagError as exc:
            sink.report_failure(self.name, str(exc))
            found = None
        if found is None:
            where = ", ".join(destination.name for destination in destinations) or "an OBS or ffmpeg ingest"
            note = f"no live stream connection to {where}"
            # Said when it changes, else every UNAVAILABLE_REPEAT_S (well within stale_after_s): the search
            # runs every few seconds, and an unchanged "searching" each time would only fill the history.
            now = self.clock()
            said = self.latest
            if (
                said is None
                or said.state != "searching"
                or said.note != note
                or now - self._searching_said_at >= UNAVAILABLE_REPEAT_S
            ):
                self.latest = UplinkSample(state="searching", note=note)
                self._searching_said_at = now
                sink.publish(self.name, self.latest)
            await self._wait_for_next_search()
            return
        log.info("uplink: reading %s (%s, %s)", found.name, found.process or "owner unknown", found.found_by)
        self._adopt(found)

    async def _wait_for_next_search(self) -> None:
        if self._nudged is None:
            self._nudged = asyncio.Event()
        self._nudged.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(next_beat(self.clock(), self.settings.discover_interval_s) - self.clock()):
                await self._nudged.wait()
                # An encoder whose connection we cannot see (another network namespace) nudges on every
                # report: searches it asks for run at most once a second.
                await asyncio.sleep(max(0.0, self._searched_at + NUDGE_MIN_GAP_S - self.clock()))

    def _adopt(self, found: IngestConnection) -> None:
        audio_bps, video_cap_kbps = self._bitrates()
        self.connection = found
        self.tracker = UplinkTracker(audio_bitrate_bps=audio_bps, video_bitrate_cap_kbps=video_cap_kbps)

    def _read_once(self, reader: SockDiagReader, sink: SampleSink) -> None:
        connection, tracker = self.connection, self.tracker
        assert connection is not None and tracker is not None
        try:
            records = reader.read(connection.remote_address, connection.remote_port)
        except SockDiagError as exc:
            sink.report_failure(self.name, str(exc))
            self.connection = self.tracker = self.latest = None  # search again, at the slower search pace
            return
        record = next((r for r in records if r.local_port == connection.local_port), None)
        if record is None:
            if not records:
                log.info("uplink: the connection to %s ended", connection.name)
                self.connection = self.tracker = self.latest = None
                return
            # The encoder reconnected to the same ingest: follow the new connection, with a fresh baseline.
            record = max(records, key=lambda r: r.tcp_info.bytes_acked or 0 if r.tcp_info else 0)
            self._adopt(
                IngestConnection(
                    connection.remote_address,
                    connection.remote_port,
                    record.local_port,
                    connection.name,
                    connection.found_by,
                    connection.pid,
                    connection.process,
                )
            )
            tracker = self.tracker
            assert tracker is not None
        sample = tracker.update(
            self.clock(),
            record,
            connection=connection.name,
            process=connection.process,
            pid=connection.pid,
            found_by=connection.found_by,
        )
        self.latest = sample
        sink.publish(self.name, sample)

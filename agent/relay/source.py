"""The relay as a source: runs the relay (listening, forwarding) and publishes a `RelaySample` every tick.

If the relay cannot listen (the port is taken), the source reports that as its failure, which the health
snapshot and the TUI show, and tries again every `LISTEN_RETRY_S`; the rest of the agent runs on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from agent.beat import sleep_until_next_beat
from agent.models import IngestSwitch, RelayDestinationSample, RelayDrops, RelaySample
from agent.relay.destination import Destination
from agent.relay.event_loop import relay_runs
from agent.relay.going_nowhere import GoingNowhere
from agent.relay.ingest_layer import IngestLayerWatch
from agent.relay.queue import DropReason
from agent.relay.relay import Relay, RelayUnavailable
from agent.relay.settings import RelaySettings
from agent.relay.standby import LISTEN_RETRY_S
from agent.settings import IngestSettings, Settings
from agent.sources.base import SampleSink, Source
from agent.supervise import Supervisor

log = logging.getLogger(__name__)


@dataclass
class _Reading:
    at_s: float
    bytes_in: int
    bytes_out: int
    pictures: int
    dropped: int


def _percentile_ms(ordered: list[float], fraction: float) -> float | None:
    """`ordered` is sorted (once, for both percentiles: it holds up to 4096 latencies, sorted every tick)."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 3)


def _round_s(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _drops(destination: Destination) -> RelayDrops:
    dropped = destination.queue.dropped
    return RelayDrops(
        disposable=dropped[DropReason.DISPOSABLE],
        until_keyframe=dropped[DropReason.UNTIL_KEYFRAME],
        queue_full=dropped[DropReason.QUEUE_FULL],
        ingest_lost=dropped[DropReason.INGEST_LOST],
    )


class RelaySource(Source):
    name: ClassVar[str] = "relay"

    def __init__(
        self,
        settings: RelaySettings,
        ingest: IngestSettings,
        *,
        interval_s: float,
        relay: Relay | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval_s=interval_s, timeout_s=interval_s)
        urls = [url for url in (ingest.primary, *ingest.backups) if url]
        self.relay = relay or Relay(settings, urls, clock=clock)
        self.settings = settings
        self.clock = clock
        self._previous: _Reading | None = None
        self._destination_previous: dict[str, tuple[float, int]] = {}
        self._going_nowhere = GoingNowhere(settings.stall_s)
        self._sink: SampleSink | None = None
        self.relay.on_change = self._publish_now
        # A new ingest from `relay point-obs`, taken between streams (ingest_layer.py).
        self._backups = list(ingest.backups)
        self._layer = IngestLayerWatch(ingest.primary)
        self._pending_ingest: str | None = None

    @property
    def supervisor(self) -> Supervisor:
        """The relay's task supervisor: the runtime adopts it, so a destination's task ending is an alert."""
        return self.relay.supervisor

    @property
    def stale_after_s(self) -> float:
        return max(3 * self.interval_s, LISTEN_RETRY_S + self.interval_s)

    def _publish_now(self) -> None:
        """A stream started, the encoder was lost or is back, or a hold ended: a sample now, not at the next beat,
        so the alert comes within a second (the sample's `holding` asks the agent for a prompt tick) and the
        timeline's times are the relay's own."""
        if self._sink is not None:
            self._sink.publish(self.name, self.sample())

    async def run(self, sink: SampleSink) -> None:
        self._sink = sink
        if self.relay.protection.start_note is not None:
            log.warning("relay: %s", self.relay.protection.start_note)
        while not self.relay.listening:
            try:
                await self.relay.start()
            except RelayUnavailable as exc:
                sink.report_failure(self.name, str(exc))
                await asyncio.sleep(LISTEN_RETRY_S)
        while True:
            self._follow_the_settings_layer()
            sink.publish(self.name, self.sample())
            await sleep_until_next_beat(self.interval_s)  # with the tick and the other sources (agent/beat.py)

    def _follow_the_settings_layer(self) -> None:
        changed = self._layer.poll()
        if changed is not None:
            self._pending_ingest = changed
        pending = self._pending_ingest
        if pending is None:
            return
        urls = [pending, *self._backups] if pending else []
        if self.relay.replace_ingest(urls):  # False while a stream is live or held: the next tick asks again
            self._pending_ingest = None

    async def close(self) -> None:
        await self.relay.close()

    def sample(self) -> RelaySample:
        relay, ingress = self.relay, self.relay.ingress
        relay.settle()  # the frames the fast lane forwarded since the last sample, noted in one pass
        now = self.clock()
        stalled = ingress.check_stall(now)
        destinations = [self._destination_sample(d, now) for d in relay.destinations]
        primary = relay.destinations[0]
        reading = _Reading(
            now, ingress.bytes_total, primary.bytes_out_total, ingress.video_pictures_total, primary.queue.dropped_total
        )
        previous, self._previous = self._previous, reading
        ingress_bps = egress_bps = fps = dropped_per_s = None
        if previous is not None and reading.at_s > previous.at_s:
            elapsed = reading.at_s - previous.at_s
            ingress_bps = round((reading.bytes_in - previous.bytes_in) * 8 / elapsed, 1)
            egress_bps = round((reading.bytes_out - previous.bytes_out) * 8 / elapsed, 1)
            fps = round((reading.pictures - previous.pictures) / elapsed, 2)
            dropped_per_s = round((reading.dropped - previous.dropped) / elapsed, 2)
        first = destinations[0]
        nowhere = self._going_nowhere.observe(ingress.publishing or relay.holding, relay.destinations, now)
        tcp = first.tcp_info
        drift = ingress.av_drift_ms
        return RelaySample(
            listen=f"{relay.settings.host}:{relay.port or relay.settings.port}",
            publishing=ingress.publishing,
            encoder=ingress.encoder,
            video_codec=ingress.video_codec,
            audio_codec=ingress.audio_codec,
            ingress_bps=ingress_bps,
            egress_bps=egress_bps,
            video_fps=fps if ingress.publishing else None,
            keyframe_interval_s=ingress.keyframe_interval_s,
            av_drift_ms=float(drift) if drift is not None else None,
            stalled=stalled,
            stalls_total=ingress.stalls_total,
            queue_ms=first.queue_ms,
            queue_bytes=first.queue_bytes,
            frames_in_total=sum(ingress.frames_total.values()),
            bytes_in_total=ingress.bytes_total,
            bytes_out_total=primary.bytes_out_total,
            frames_out_total=first.frames_out_total,
            frames_dropped_total=primary.queue.dropped_total,
            frames_dropped_per_s=dropped_per_s,
            frames_dropped=first.frames_dropped,
            latency_p50_ms=first.latency_p50_ms,
            latency_p99_ms=first.latency_p99_ms,
            ingest_rtt_ms=tcp.rtt_ms if tcp else None,
            ingest_rtt_variance_ms=tcp.rtt_variance_ms if tcp else None,
            ingest_retransmits_total=tcp.retransmits_total if tcp else None,
            ingest_unsent_bytes=tcp.not_sent_bytes if tcp else None,
            ingest_delivery_rate_bps=float(tcp.delivery_rate_bps) if tcp and tcp.delivery_rate_bps else None,
            publishers_refused_total=ingress.publishers_refused_total,
            connections_dropped_total=ingress.connections_dropped_total,
            ingest_unreachable=(ingress.publishing or relay.holding)
            and primary.state in ("retrying", "rejected", "connecting"),
            holding=relay.holding,
            hold_remaining_s=_round_s(relay.protection.remaining_s()),
            held_total_s=round(relay.protection.held_total_s(), 3),
            slate_note=relay.protection.note(),
            going_nowhere=nowhere is not None,
            going_nowhere_reason=nowhere,
            destinations=destinations,
            ingest_switches=self._new_switches(),
        )

    def _new_switches(self) -> list[IngestSwitch]:
        """Switches since the previous sample: the runtime turns each into an alert and a health-log line."""
        switches: list[IngestSwitch] = []
        for destination in self.relay.destinations:
            switches.extend(destination.switches)
            destination.switches.clear()
        return sorted(switches, key=lambda switch: switch.at)

    def _destination_sample(self, destination: Destination, now: float) -> RelayDestinationSample:
        previous = self._destination_previous.get(destination.name)
        self._destination_previous[destination.name] = (now, destination.bytes_out_total)
        egress_bps = None
        if previous is not None and now > previous[0]:
            egress_bps = round((destination.bytes_out_total - previous[1]) * 8 / (now - previous[0]), 1)
        latencies = sorted(destination.latencies_s)
        queue = destination.queue
        return RelayDestinationSample(
            name=destination.name,
            state=destination.state,
            error=destination.last_error,
            egress_bps=egress_bps,
            frames_out_total=destination.frames_out_total,
            bytes_out_total=destination.bytes_out_total,
            queue_ms=queue.duration_ms,
            queue_bytes=queue.size_bytes,
            queue_peak_ms=queue.peak_ms,
            queue_peak_bytes=queue.peak_bytes,
            frames_dropped=_drops(destination),
            latency_p50_ms=_percentile_ms(latencies, 0.5),
            latency_p99_ms=_percentile_ms(latencies, 0.99),
            tcp_info=destination.tcp_info(),
            ingest=destination.rotation.name if destination.state != "idle" else None,
            on_backup=destination.rotation.on_backup,
            reconnects_total=destination.reconnects_total,
            failovers_total=destination.failovers_total,
            last_switch=destination.last_switch,
        )


def relay_sources(settings: Settings) -> list[Source]:
    """The relay as the runtime's source when it runs (enabled, and somewhere to forward to), else none.

    The relay registers itself here rather than in agent/sources/, which measure and sit below it; it
    receives only its own section and the ingest list."""
    if not relay_runs(settings):
        return []
    return [RelaySource(settings.relay, settings.ingest, interval_s=settings.sampling.interval_s)]

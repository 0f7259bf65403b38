"""What the uplink carries, as one `CapacityEstimate` per tick: the figure the headroom rule and the TUI's
upload tile share. Sans-I/O: it reads the latest samples (uplink, relay, encoder, bandwidth test) and keeps
only what it needs to tell a measurement from a bound.

A capacity is measured only where the link, not the sender, set the pace: a bandwidth test, what the ingest
acknowledged on the stream's connection over the seconds it was backlogged, as the kernel reads it while it is
congested (agent/net/uplink_tracker.py: OBS's connection, or the relay's), or, where the kernel's view is not at
hand, the relay's egress while its queue toward the ingest is backlogged. While the kernel reads a congested
connection its figure alone measures it (none until its intervals agree). Those are revised as soon as the link shows no backlog
again: what a link carried during a cut says nothing once the cut is over. Otherwise what leaves the encoder or
the relay proves only a lower bound, and a lower bound never says the link is too slow.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from agent.models import HealthSnapshot
from agent.models.capacity import CapacityEstimate, CapacitySource
from agent.net.encoder_rates import FfmpegRates
from agent.net.steady import HeldFigure, agreed

# The relay's queue counts as a backlog from this much media waiting (its early warning's threshold)...
RELAY_BACKLOG_MS = 350
# ... and, once a backlog has lasted this long (the egress figure is an average over the last seconds: right
# after a cut it still holds the healthy link's rate), what the sender gets out is the link's rate.
BACKLOG_HOLD_S = 2.0
# A backlog ends after this long without one (or at once when the sender stops).
BACKLOG_GAP_S = 2.0
# OBS's send buffer this far toward its drop threshold: what OBS gets out is what the link takes.
OBS_BACKLOG_CONGESTION_RATIO = 0.1
# A sender's output while backlogged (the relay's egress, OBS's or ffmpeg's output) is a figure over its last
# second, bursts included: the last this many readings make it, once this many of them agree (steady.py), and
# it is held until they agree on another for seconds. The kernel's figure comes held by the uplink tracker.
SENDER_READINGS_KEPT = 5
# A stream's lower bound outlives the stream by this much (a hiccup's aftermath), and a hold by all of it.
BOUND_KEPT_S = 600.0
SENDER_READINGS_MIN = 3
KERNEL_STEADY_RATIO = 0.1


class _Backlog:
    """A sender's backlog, held through its gaps: the relay's queue and OBS's buffer saw up and down while the
    link is short (each drop empties part of them), so a backlog ends only after BACKLOG_GAP_S without one."""

    def __init__(self) -> None:
        self.since_s: float | None = None
        self.last_seen_s: float | None = None

    @property
    def active(self) -> bool:
        return self.since_s is not None

    def seen(self, now_s: float, *, backlogged: bool, drained: bool) -> bool:
        """Record this reading; True once the backlog has lasted BACKLOG_HOLD_S."""
        if backlogged:
            self.since_s = now_s if self.since_s is None else self.since_s
            self.last_seen_s = now_s
        elif self.since_s is not None and (
            drained or self.last_seen_s is None or now_s - self.last_seen_s >= BACKLOG_GAP_S
        ):
            self.since_s = self.last_seen_s = None
        return self.since_s is not None and now_s - self.since_s >= BACKLOG_HOLD_S


class CapacityTracker:
    """Feed one snapshot per tick to `update`, with the monotonic time; returns the best estimate or None."""

    def __init__(self) -> None:
        self._measured: CapacityEstimate | None = None
        self._relay_backlog = _Backlog()
        self._obs_backlog = _Backlog()
        self._ffmpeg = FfmpegRates()
        self._ffmpeg_backlog = _Backlog()
        self._contradicted_at: datetime | None = None  # a bandwidth test older than this is out of date
        self._sender_source: CapacitySource | None = None  # the source of the readings below
        self._sender_readings: deque[float] = deque(maxlen=SENDER_READINGS_KEPT)
        self._sender_figure = HeldFigure()
        self._last_bound: CapacityEstimate | None = None  # the latest sender-side lower bound, dated

    def update(self, snapshot: HealthSnapshot, now_s: float) -> CapacityEstimate | None:
        at = snapshot.taken_at
        kernel = self._kernel_measurement(snapshot)
        relay = self._relay_measurement(snapshot, now_s)
        if _kernel_sees(snapshot):
            relay = None  # the relay's queue drains and bursts after a cut: the kernel's view of its link decides
        self._ffmpeg.update(snapshot)
        obs = self._encoder_measurement(snapshot, now_s)
        if _kernel_congested(snapshot):
            # The kernel reads the congested connection: its figure (once its backlogged intervals agree) is the
            # measurement; what OBS got out over its last second, a burst included, is no better meanwhile.
            obs = None
        encoder = obs or self._ffmpeg_measurement(snapshot, now_s)
        fresh = kernel or relay or encoder
        if fresh is not None:
            self._measured = self._steady(fresh, at, now_s) or self._measured
            self._contradicted_at = at
        elif self._link_keeps_up(snapshot):
            self._measured = None
            self._forget_sender()
        if self._measured is not None:
            return self._measured
        tested = self._bandwidth_test(snapshot)
        if tested is not None:
            return tested
        return self._lower_bound(snapshot)

    # --- measurements ------------------------------------------------------------------------------

    def _kernel_measurement(self, snapshot: HealthSnapshot) -> tuple[float, CapacitySource, str] | None:
        uplink = snapshot.uplink
        if uplink is None or not uplink.congested or not uplink.link_rate_bps:
            return None
        return uplink.link_rate_bps, "kernel_delivery_rate", "what the congested connection delivered"

    def _relay_measurement(self, snapshot: HealthSnapshot, now_s: float) -> tuple[float, CapacitySource, str] | None:
        relay = snapshot.relay
        backlogged = (
            relay is not None
            and relay.publishing
            and (relay.queue_ms >= RELAY_BACKLOG_MS or bool(relay.frames_dropped_per_s))
        )
        drained = relay is None or not relay.publishing
        if not self._relay_backlog.seen(now_s, backlogged=backlogged, drained=drained):
            return None
        assert relay is not None
        if not backlogged or not relay.egress_bps:
            return None
        return relay.egress_bps, "relay_egress", "what the relay sent with its queue backlogged"

    def _encoder_measurement(self, snapshot: HealthSnapshot, now_s: float) -> tuple[float, CapacitySource, str] | None:
        """OBS's output rate while its own send buffer holds a backlog (where the kernel's view is not at hand:
        another OS, another machine)."""
        obs = snapshot.obs
        streaming = obs is not None and obs.streaming and bool(obs.output_bitrate_bps)
        congestion = (obs.output_congestion_ratio or 0.0) if obs is not None else 0.0
        backlogged = streaming and congestion >= OBS_BACKLOG_CONGESTION_RATIO
        if not self._obs_backlog.seen(now_s, backlogged=backlogged, drained=not streaming):
            return None
        assert obs is not None
        if not backlogged or obs.output_bitrate_bps is None:
            return None
        return obs.output_bitrate_bps, "encoder_output", "what OBS got out with its send buffer backlogged"

    def _ffmpeg_measurement(self, snapshot: HealthSnapshot, now_s: float) -> tuple[float, CapacitySource, str] | None:
        """An ffmpeg held back by its output (slower than real time): what it gets out (what it wrote less what
        the kernel still holds) is the link's rate. No hold: its speed is already a figure over the last 2 s."""
        rates = self._ffmpeg
        ended = snapshot.ffmpeg is None or snapshot.ffmpeg.ended
        if not self._ffmpeg_backlog.seen(now_s, backlogged=rates.blocked, drained=ended) and not rates.blocked:
            return None
        uplink = snapshot.uplink
        if uplink is None or uplink.state not in ("ok", "congested"):
            return None  # what it wrote may still sit in a socket buffer of megabytes: only the kernel's view tells
        if not rates.blocked or not rates.throughput_bps:
            return None
        # Right after a stream starts on a slow link, the window still holds the socket buffer filling up:
        # the last second's rate, if lower, is nearer the link's.
        bps = min(rates.throughput_bps, rates.recent_bps or rates.throughput_bps)
        return bps, "encoder_output", "what ffmpeg got out while held back by its output"

    def _steady(self, fresh: tuple[float, CapacitySource, str], at: datetime, now_s: float) -> CapacityEstimate | None:
        """The figure to show for this reading: the kernel's as it comes; a sender's once its readings agree."""
        bps, source, note = fresh
        kept = self._measured
        if source == "kernel_delivery_rate":
            if kept is not None and kept.source == source and abs(bps / kept.bps - 1) < KERNEL_STEADY_RATIO:
                bps = kept.bps  # the tracker rounds what it holds; a figure it revised a hair is the same link
        else:
            if source != self._sender_source:
                self._forget_sender()
                self._sender_source = source
            self._sender_readings.append(bps)
            readings = self._sender_readings
            self._sender_figure.offer(now_s, agreed(readings) if len(readings) >= SENDER_READINGS_MIN else None)
            if self._sender_figure.value is None:
                return None  # not agreed yet: the last measured figure (if any) stands
            bps = self._sender_figure.value
        return CapacityEstimate(bps=round(bps), source=source, lower_bound=False, measured_at=at, note=note)

    def _forget_sender(self) -> None:
        self._sender_source = None
        self._sender_readings.clear()
        self._sender_figure.clear()

    def _link_keeps_up(self, snapshot: HealthSnapshot) -> bool:
        """No backlog where the agent can see the link: the uplink's verdict is clear (it holds its warning
        until the path has looked healthy for a few seconds) and the relay's queue has drained."""
        uplink = snapshot.uplink
        uplink_clear = uplink is None or not uplink.congested
        if _kernel_sees(snapshot):
            return uplink_clear
        backlogs = (self._relay_backlog, self._obs_backlog, self._ffmpeg_backlog)
        return uplink_clear and not any(backlog.active for backlog in backlogs)

    def _bandwidth_test(self, snapshot: HealthSnapshot) -> CapacityEstimate | None:
        test = snapshot.bandwidth
        if test is None or not test.ok or not test.upload_bps:
            return None
        if self._contradicted_at is not None and test.finished_at <= self._contradicted_at:
            return None  # the link was measured slower since: the test describes a link that is gone
        return CapacityEstimate(
            bps=test.upload_bps,
            source="bandwidth_test",
            lower_bound=False,
            measured_at=test.finished_at,
            note=f"bandwidth test against {test.target}",
        )

    def _lower_bound(self, snapshot: HealthSnapshot) -> CapacityEstimate | None:
        candidates: list[tuple[float, CapacitySource, str]] = []
        relay, obs = snapshot.relay, snapshot.obs
        if relay is not None and relay.publishing and relay.egress_bps:
            candidates.append((relay.egress_bps, "relay_egress", "at least what the relay sends"))
        if obs is not None and obs.streaming and obs.output_bitrate_bps:
            candidates.append((obs.output_bitrate_bps, "encoder_output", "at least what OBS sends"))
        if not candidates:
            # A bound stays true of the link it was seen on: while the relay holds the broadcast with the slate
            # (nothing of the stream is sent), and for a while after a stream, the last one stands, dated.
            last = self._last_bound
            if last is None:
                return None
            holding = relay is not None and relay.holding
            if holding or (snapshot.taken_at - last.measured_at).total_seconds() <= BOUND_KEPT_S:
                return last
            self._last_bound = None
            return None
        bps, source, note = max(candidates, key=lambda candidate: candidate[0])
        self._last_bound = CapacityEstimate(
            bps=round(bps), source=source, lower_bound=True, measured_at=snapshot.taken_at, note=note
        )
        return self._last_bound


def _kernel_congested(snapshot: HealthSnapshot) -> bool:
    """The uplink source reads the stream's connection (OBS's own, or the relay's) and finds it congested."""
    uplink = snapshot.uplink
    return uplink is not None and uplink.congested


def _kernel_sees(snapshot: HealthSnapshot) -> bool:
    """The uplink source reads the connection that carries the stream (the encoder's, or the relay's)."""
    uplink = snapshot.uplink
    return uplink is not None and uplink.state in ("ok", "congested") and uplink.found_by == "ingest"

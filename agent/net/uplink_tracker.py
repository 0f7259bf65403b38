"""Turns successive tcp_info readings of the encoder's connection into an `UplinkSample` (sans-I/O).

Rates come from the difference between two readings (acknowledged bytes, retransmits, limited times).
The early warning fires when the path stops keeping up: the RTT well above its baseline (the kernel's
min RTT) together with bytes piling up unsent, retransmits, a send buffer that blocks the encoder or a
link (not the encoder) setting the pace, held for a fraction of a second so one burst (a keyframe) does
not make it flap. It clears after the path has looked healthy for a few seconds. The link rate is what
the congested connection delivered (the median of the kernel's delivery-rate samples, leaving out stalls,
timeouts and samples the encoder itself limited; the acknowledged throughput as a floor); the bitrate
suggestion keeps headroom under it and stays put while it holds.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from agent.models.uplink import UplinkSample
from agent.net.sockdiag import TcpDiagRecord

TROUBLE_HOLD_S = 0.45  # trouble must last this long (two reads at 4 Hz) to raise the warning
HEALTHY_HOLD_S = 3.0  # and the path must look healthy this long to clear it
QUEUE_DELAY_MIN_MS = 20.0  # RTT above the baseline by at least this (and by half the baseline) is queueing
UNSENT_MIN_BYTES = 8192
LINK_SAMPLES_KEPT = 48  # 12 s of congested readings at 4 Hz
HEADROOM_RATIO = 0.8
SUGGESTION_STEP_KBPS = 50
SUGGESTION_MIN_KBPS = 200
SUGGESTION_CHANGE_RATIO = 0.2  # a new suggestion only when the link rate moved this much ...
SUGGESTION_SETTLE_S = 2.0  # ... for this long
FLOOR_CORRECTION_RATIO = 0.05  # or at once when the link surely carried this much more than quoted
DELIVERY_SAMPLES_MIN = 2  # clean delivery-rate samples before their median is the link rate
CARRIED_FLOOR_WINDOW_S = 3.0  # acknowledged throughput over a window this long is a floor
RECOVERY_SHOWN_S = 60.0
TCP_CA_LOSS = 4  # the connection is recovering from a retransmission timeout: its rates mean nothing


@dataclass
class _Previous:
    at: float
    bytes_acked: int
    retransmits: int
    busy_us: int
    rwnd_limited_us: int
    sndbuf_limited_us: int
    unsent_bytes: int


@dataclass
class UplinkTracker:
    """Feed one reading per call to `update`; keep one tracker per connection (a new one after a reconnect)."""

    audio_bitrate_bps: float = 160_000
    video_bitrate_cap_kbps: int | None = None
    previous: _Previous | None = None
    trouble_since: float | None = None
    misses: int = 0
    healthy_since: float | None = None
    congested_since: float | None = None
    cleared_at: float | None = None
    suggestion_kbps: int | None = None
    suggestion_link_bps: float | None = None
    _moved_since: float | None = None
    delivery_samples_bps: deque[float] = field(default_factory=lambda: deque(maxlen=LINK_SAMPLES_KEPT))
    _stalled_before: bool = False
    last_reason: str | None = None  # the signals of the last troubled reading: what a congestion rests on
    acked_window: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=LINK_SAMPLES_KEPT))

    def update(self, now: float, record: TcpDiagRecord, **identity: object) -> UplinkSample:
        info = record.tcp_info
        if info is None:
            return UplinkSample(state="searching", note="the kernel sent no tcp_info for the connection", **identity)
        unsent = info.notsent_bytes or 0
        acked = info.bytes_acked or 0
        current = _Previous(
            now,
            acked,
            info.total_retrans,
            info.busy_time_us or 0,
            info.rwnd_limited_us or 0,
            info.sndbuf_limited_us or 0,
            unsent,
        )
        previous, self.previous = self.previous, current
        rtt_ms, min_rtt_ms = info.rtt_us / 1000, (info.min_rtt_us or info.rtt_us) / 1000
        delivery_bps = None if info.delivery_rate_bytes_per_s is None else info.delivery_rate_bytes_per_s * 8.0
        elapsed = 0.0 if previous is None else now - previous.at
        acked_bps = retransmits_per_s = sndbuf_ratio = rwnd_ratio = None
        retransmitted = sndbuf_blocked = unsent_growing = False
        if previous is not None and elapsed > 0:
            acked_delta = max(0, acked - previous.bytes_acked)
            acked_bps = acked_delta * 8 / elapsed
            retransmits = max(0, info.total_retrans - previous.retransmits)
            retransmits_per_s = retransmits / elapsed
            interval_us = elapsed * 1e6
            sndbuf_ratio = min(1.0, max(0, current.sndbuf_limited_us - previous.sndbuf_limited_us) / interval_us)
            rwnd_ratio = min(1.0, max(0, current.rwnd_limited_us - previous.rwnd_limited_us) / interval_us)
            retransmitted = retransmits > 0
            sndbuf_blocked = sndbuf_ratio > 0.05
            unsent_growing = unsent >= UNSENT_MIN_BYTES and unsent >= previous.unsent_bytes
        # The kernel flags each delivery-rate sample the sender (the encoder) limited; a stream that fits
        # its link is app-limited nearly all the time, so a sample that is not, with queueing, is the link.
        network_limited = previous is not None and info.delivery_rate_app_limited is False
        queueing = rtt_ms - min_rtt_ms >= max(QUEUE_DELAY_MIN_MS, 0.5 * min_rtt_ms)
        signals = [
            name
            for name, on in (
                (f"RTT {_ms(rtt_ms)} against a {_ms(min_rtt_ms)} baseline", queueing),
                (f"{unsent / 1024:.0f} KiB waiting unsent", unsent_growing),
                (f"{retransmits_per_s or 0:.0f} retransmits/s", retransmitted),
                ("the encoder blocked on a full send buffer", sndbuf_blocked),
                ("the link, not the encoder, sets the pace", network_limited),
            )
            if on
        ]
        trouble = (queueing and len(signals) >= 2) or (unsent_growing and (retransmitted or sndbuf_blocked))
        stalled = previous is not None and acked_bps == 0 and unsent + (record.send_queue_bytes or 0) > 0
        # The first troubled reading's interval straddles the change (part of it was the old link): skip it.
        if self.trouble_since is not None or self.congested_since is not None:
            backlogged = unsent > 0 or info.delivery_rate_app_limited is False
            clean = not stalled and not self._stalled_before and info.ca_state != TCP_CA_LOSS and backlogged
            self._learn_link(elapsed, acked_bps, delivery_bps, info.delivery_rate_app_limited, clean)
        self._stalled_before = stalled
        self._step(now, trouble, queueing or unsent_growing or retransmitted)
        congested = self.congested_since is not None
        if trouble:
            self.last_reason = ", ".join(signals)
        if congested:
            self._suggest(now)
        return UplinkSample(
            state="congested" if congested else "ok",
            local_port=record.local_port,
            rtt_ms=round(rtt_ms, 3),
            min_rtt_ms=round(min_rtt_ms, 3),
            rtt_variance_ms=round(info.rttvar_us / 1000, 3),
            retransmits_per_s=None if retransmits_per_s is None else round(retransmits_per_s, 2),
            retransmits_total=info.total_retrans,
            unsent_bytes=unsent,
            unacked_bytes=max(0, record.send_queue_bytes - unsent),
            delivery_rate_bps=delivery_bps,
            delivery_rate_app_limited=info.delivery_rate_app_limited,
            acked_bps=None if acked_bps is None else round(acked_bps),
            send_congestion_window_segments=info.snd_cwnd,
            sndbuf_limited_ratio=None if sndbuf_ratio is None else round(sndbuf_ratio, 3),
            rwnd_limited_ratio=None if rwnd_ratio is None else round(rwnd_ratio, 3),
            congested=congested,
            congested_for_s=round(now - self.congested_since, 2) if self.congested_since is not None else None,
            # A congestion held through a quiet reading still names the evidence it was raised on.
            congestion_reason=(", ".join(signals) if signals else self.last_reason) if congested else None,
            link_rate_bps=self.suggestion_link_bps if congested else None,
            suggested_video_bitrate_kbps=self.suggestion_kbps if congested else None,
            recovered_at_s_ago=self._recovered_ago(now),
            **identity,
        )

    def _step(self, now: float, trouble: bool, doubtful: bool) -> None:
        if trouble:
            self.misses = 0
            self.healthy_since = None
            if self.trouble_since is None:
                self.trouble_since = now
            if self.congested_since is None and now - self.trouble_since >= TROUBLE_HOLD_S:
                self.congested_since = now
            return
        self.misses += 1
        if self.misses >= 2:  # one quiet reading inside a congestion (the encoder paused writing) is not recovery
            self.trouble_since = None
        if self.congested_since is None:
            return
        if doubtful:
            self.healthy_since = None
        elif self.healthy_since is None:
            self.healthy_since = now
        elif now - self.healthy_since >= HEALTHY_HOLD_S:
            self.congested_since = self.healthy_since = None
            self.cleared_at = now
            self.suggestion_kbps = self.suggestion_link_bps = None
            self.last_reason = None
            self.delivery_samples_bps.clear()
            self.acked_window.clear()

    def _learn_link(
        self, elapsed: float, acked_bps: float | None, delivery_bps: float | None, app_limited: bool | None, clean: bool
    ) -> None:
        """Keep what the congested link delivered. Every interval counts towards the acknowledged total (a
        floor); the kernel's delivery-rate samples only from clean intervals: no stall, not the catch-up
        right after one, no timeout recovery, data waiting to be sent, not limited by the encoder."""
        if acked_bps is None or elapsed <= 0:
            return
        self.acked_window.append((elapsed, acked_bps * elapsed))
        if clean and delivery_bps is not None and not app_limited:
            self.delivery_samples_bps.append(delivery_bps)

    def _suggest(self, now: float) -> None:
        if not self.delivery_samples_bps and not self.acked_window:
            return
        # The kernel's delivery-rate samples (delivered over the interval it took, SACKs counted) are the
        # link's rate; their median shrugs off the odd sample. Acknowledged bytes over a window are not,
        # early on: what was queued or SACKed before the window is acknowledged inside it (34 KB over 1 s
        # is +0.27 Mbit/s on a 1.2 Mbit/s link), so they are only a floor once the window is long.
        seconds = sum(elapsed for elapsed, _ in self.acked_window)
        carried_bps = sum(bits for _, bits in self.acked_window) / seconds if seconds > 0 else 0.0
        if len(self.delivery_samples_bps) >= DELIVERY_SAMPLES_MIN:
            estimate_bps = statistics.median(self.delivery_samples_bps)
        else:
            estimate_bps = carried_bps
        floor_bps = carried_bps if seconds >= CARRIED_FLOOR_WINDOW_S else 0.0
        link_bps = max(floor_bps, estimate_bps)  # never below what the link surely carried
        # Quoting less than the link surely carried would be wrong, however steady: that corrects at once.
        surely_more = self.suggestion_link_bps is not None and floor_bps > self.suggestion_link_bps * (
            1 + FLOOR_CORRECTION_RATIO
        )
        if self.suggestion_link_bps is not None and not surely_more:
            if abs(link_bps / self.suggestion_link_bps - 1) < SUGGESTION_CHANGE_RATIO:
                self._moved_since = None
                return  # the same link: keep the same number
            if self._moved_since is None:
                self._moved_since = now
            if now - self._moved_since < SUGGESTION_SETTLE_S:
                return  # a new number only once the link has really changed, not on one odd reading
        self._moved_since = None
        video_kbps = (link_bps * HEADROOM_RATIO - self.audio_bitrate_bps) / 1000
        video_kbps = max(SUGGESTION_MIN_KBPS, int(video_kbps // SUGGESTION_STEP_KBPS) * SUGGESTION_STEP_KBPS)
        if self.video_bitrate_cap_kbps:
            video_kbps = min(video_kbps, self.video_bitrate_cap_kbps)
        self.suggestion_link_bps, self.suggestion_kbps = round(link_bps), video_kbps

    def _recovered_ago(self, now: float) -> float | None:
        if self.congested_since is not None or self.cleared_at is None or now - self.cleared_at > RECOVERY_SHOWN_S:
            return None
        return round(now - self.cleared_at, 1)


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"

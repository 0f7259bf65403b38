"""Turns successive tcp_info readings of the encoder's connection into an `UplinkSample` (sans-I/O).

Rates come from the difference between two readings (acknowledged bytes, retransmits, limited times).
The early warning fires when the path stops keeping up: the RTT well above its baseline (the kernel's
min RTT) together with bytes piling up unsent, retransmits, a send buffer that blocks the encoder or a
link (not the encoder) setting the pace, held for a fraction of a second so one burst (a keyframe) does
not make it flap. It clears after the path has looked healthy for a few seconds.

The link rate is what the ingest acknowledged over the intervals the connection was backlogged (bytes
waiting unsent at both ends of the interval: the link, never the sender, set the pace), outside the
kernel's loss recovery and not right after one (whose cumulative acknowledgement of SACKed data is a burst):
the median of those intervals' rates over the last few seconds. The kernel's own delivery-rate samples are
not used: on a link shaped to 1.2 Mbit/s they spread from 0.57 to 1.46 Mbit/s within seconds (the bursts
of the first moments of a cut, the ack intervals of a relay's bursty writes), where the acknowledged rate of
backlogged intervals stays within 1.06-1.23 (tests/fixtures/uplink/). A first suggestion comes only once
enough intervals agree, and it keeps headroom under that rate and stays put unless the rate moves by more
than a margin for seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agent.models.uplink import UplinkSample
from agent.net.sockdiag import TcpDiagRecord
from agent.net.steady import HeldFigure, agreed

TROUBLE_HOLD_S = 0.45  # trouble must last this long (two reads at 4 Hz) to raise the warning
HEALTHY_HOLD_S = 3.0  # and the path must look healthy this long to clear it
QUEUE_DELAY_MIN_MS = 20.0  # RTT above the baseline by at least this (and by half the baseline) is queueing
UNSENT_MIN_BYTES = 8192
HEADROOM_RATIO = 0.8
SUGGESTION_STEP_KBPS = 50
SUGGESTION_MIN_KBPS = 200
LINK_WINDOW_S = 3.0  # the link rate: backlogged intervals over the last this long of them ...
LINK_WINDOW_MIN_S = 1.5  # ... at least this long of them before a first figure, most agreeing (steady.py)
LINK_EVIDENCE_MAX_AGE_S = 10.0  # intervals older than this are forgotten (the link may have changed since)
RECOVERY_SHOWN_S = 60.0
TCP_CA_RECOVERY = 3  # the kernel's congestion-avoidance state from here on (3 Recovery, 4 Loss): a loss is
# being recovered, and what is acknowledged meanwhile, or right after, is no rate of the link


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
    link: HeldFigure = field(default_factory=HeldFigure)  # moves past steady.CHANGE_RATIO for SETTLE_S only
    _unsettled_before: bool = True  # the last interval was a stall or a recovery: the next one catches up
    last_reason: str | None = None  # the signals of the last troubled reading: what a congestion rests on
    # (reading time, seconds, acknowledged bits) of the backlogged intervals: what the link carried
    backlogged_intervals: deque[tuple[float, float, float]] = field(default_factory=deque)

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
        unsettled = stalled or info.ca_state >= TCP_CA_RECOVERY
        if (self.trouble_since is not None or self.congested_since is not None) and previous is not None:
            # Data waiting at both ends: the socket was never empty, so what was acknowledged is what the link
            # carried (after the link's return the backlog drains in one interval, which ends empty).
            backlogged = unsent > 0 and previous.unsent_bytes > 0
            if backlogged and not unsettled and not self._unsettled_before and acked_bps is not None:
                self._learn_link(now, elapsed, acked_bps)
        self._unsettled_before = unsettled
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
            self.backlogged_intervals.clear()
            self.link.clear()

    def _learn_link(self, now: float, elapsed: float, acked_bps: float) -> None:
        if elapsed <= 0:
            return
        intervals = self.backlogged_intervals
        intervals.append((now, elapsed, acked_bps * elapsed))
        while intervals and now - intervals[0][0] > LINK_EVIDENCE_MAX_AGE_S:
            intervals.popleft()
        while sum(seconds for _, seconds, _ in intervals) - intervals[0][1] >= LINK_WINDOW_S:
            intervals.popleft()

    def link_rate_bps(self) -> float | None:
        """The agreed rate (steady.agreed) of the backlogged intervals over the window, once it is long enough;
        else None: not known yet."""
        intervals = self.backlogged_intervals
        if sum(seconds for _, seconds, _ in intervals) < LINK_WINDOW_MIN_S:
            return None
        return agreed([bits / seconds for _, seconds, bits in intervals])

    def _suggest(self, now: float) -> None:
        if not self.link.offer(now, self.link_rate_bps()) or self.link.value is None:
            return  # nothing agreed yet, or the same link: a suggestion already made stands
        link_bps = self.link.value
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

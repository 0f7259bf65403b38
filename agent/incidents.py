"""The incident timeline: turns what the runtime already judges into one line per event, with its time.

Fed by the runtime (agent/runtime.py) with the samples it receives and the alert changes its rules make;
it judges nothing itself: it notices when an existing verdict changes (the uplink's `congested`, the relay's
drop rate, `publishing`, `holding`, an ingest switch, an alert raised or cleared) and words it with the
numbers of that moment. Bounded: the whole run's incidents up to `KEPT`, the snapshot's last 10 minutes.
Not for rules or alerts: an incident is a record of what happened, never a judgment of its own.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Literal

from agent.models import AlertChange, RelaySample, Sample, UplinkSample
from agent.models.incidents import Incident, IncidentKind
from agent.models.relay import IngestSwitch

log = logging.getLogger(__name__)

KEPT = 1000  # a whole run's worth of hiccups (a bad evening has dozens), small in memory
RECENT_S = 600.0  # the Live screen's strip: the last 10 minutes
RECENT_KEPT = 30  # and at most this many lines in each snapshot (every tick carries them into the log)

Severity = Literal["info", "warning", "critical"]


HEADLINE_CHARS = 110  # an incident line says what happened; the alert itself (Alerts screen) has the whole advice


def alert_headline(message: str) -> str:
    """An alert's message up to the end of its first sentence (what is wrong, with its numbers), without the
    advice that follows: a strip of one-line incidents where a single alert took four rows pushed the hold's
    line off the Live screen within 30 s. Never cut inside a sentence, so no number is lost half-way."""
    for stop in (". ", "; "):
        head, found, _ = message.partition(stop)
        if found and len(head) <= HEADLINE_CHARS:
            return head
    return message


def _mbps(bps: float | None) -> str:
    return "?" if bps is None else f"{bps / 1e6:.2f} Mb/s"


def _ms(ms: float | None) -> str:
    return "?" if ms is None else f"{ms:.0f} ms"


class IncidentLog:
    """The run's incidents, oldest first in memory; `recent()` gives the snapshot's view, newest first."""

    def __init__(self, kept: int = KEPT) -> None:
        self._incidents: deque[Incident] = deque(maxlen=kept)
        self.total = 0
        self._congested = False
        self._publishing = False
        self._holding = False
        self._dropping = False
        self._drops_at_start = 0
        self._dropping_since: datetime | None = None

    # --- what the runtime hands in ---------------------------------------------------------------

    def observe_sample(self, sample: Sample) -> None:
        if isinstance(sample, UplinkSample):
            self._observe_uplink(sample)
        elif isinstance(sample, RelaySample):
            self._observe_relay(sample)

    def observe_alert(self, change: AlertChange, at: datetime) -> None:
        alert = change.alert
        if change.change == "raised":
            self._note(
                at, "alert_raised", alert.severity, f"{alert.severity.upper()} alert: {alert_headline(alert.message)}"
            )
        elif change.change == "cleared":
            self._note(at, "alert_cleared", "info", f"alert cleared: {alert_headline(alert.message)}")

    # --- reading ---------------------------------------------------------------------------------

    def recent(self, now: datetime, window_s: float = RECENT_S, limit: int = RECENT_KEPT) -> list[Incident]:
        """The last `window_s` seconds, newest first, at most `limit` lines."""
        since = now - timedelta(seconds=window_s)
        found: list[Incident] = []
        for incident in reversed(self._incidents):
            if incident.at < since or len(found) >= limit:
                break
            found.append(incident)
        return found

    def all(self) -> list[Incident]:
        """The whole run's (up to `KEPT`), newest first."""
        return list(reversed(self._incidents))

    # --- the verdicts watched --------------------------------------------------------------------

    def _observe_uplink(self, uplink: UplinkSample) -> None:
        congested = uplink.congested
        if congested == self._congested:
            return
        self._congested = congested
        if congested:
            text = f"link slowed: the kernel delivers {_mbps(uplink.delivery_rate_bps)}; " + (
                uplink.congestion_reason or f"RTT {_ms(uplink.rtt_ms)} (base {_ms(uplink.min_rtt_ms)})"
            )
            self._note(uplink.taken_at, "link_slowed", "warning", text)
        else:
            self._note(uplink.taken_at, "link_back", "info", f"link back: RTT {_ms(uplink.rtt_ms)}")

    def _observe_relay(self, relay: RelaySample) -> None:
        at = relay.taken_at
        for switch in relay.ingest_switches:
            self._note_switch(switch)
        if relay.holding != self._holding:
            self._holding = relay.holding
            if relay.holding:
                left = f" for up to {relay.hold_remaining_s:.0f} s" if relay.hold_remaining_s is not None else ""
                self._note(at, "encoder_lost", "critical", f"encoder lost: the relay holds the broadcast{left}")
            elif relay.publishing:
                self._note(at, "encoder_back", "info", f"encoder back after {relay.held_total_s:.0f} s on the slate")
            else:
                self._note(at, "hold_ended", "critical", "hold ended: the encoder did not come back, stream ended")
            self._publishing = relay.publishing  # the hold's lines say it: no "started" or "stopped" besides
        elif relay.publishing != self._publishing:
            self._publishing = relay.publishing
            if relay.publishing:
                self._note(at, "stream_started", "info", "encoder publishing to the relay")
            else:
                note = f" ({relay.slate_note})" if relay.slate_note else ""
                self._note(at, "stream_ended", "warning", f"encoder stopped publishing{note}")
        dropping = bool(relay.frames_dropped_per_s)
        if relay.frames_dropped_per_s is not None and dropping != self._dropping:
            self._dropping = dropping
            if dropping:
                self._drops_at_start = relay.frames_dropped_total
                self._dropping_since = at
                drops = relay.frames_dropped
                reasons = ", ".join(
                    f"{name} {count}"
                    for name, count in (
                        ("inter", drops.until_keyframe),
                        ("nonref", drops.disposable),
                        ("full", drops.queue_full),
                        ("ingest lost", drops.ingest_lost),
                    )
                    if count
                )
                text = f"relay dropping {relay.frames_dropped_per_s:.0f} frames/s, queue {relay.queue_ms} ms"
                self._note(at, "relay_dropping", "critical", text + (f" ({reasons})" if reasons else ""))
            else:
                dropped = relay.frames_dropped_total - self._drops_at_start
                lasted = (at - self._dropping_since).total_seconds() if self._dropping_since else 0.0
                self._note(at, "relay_drops_ended", "info", f"relay drops ended: {dropped} frames in {lasted:.0f} s")

    def _note_switch(self, switch: IngestSwitch) -> None:
        kind: IncidentKind = "failover" if switch.kind == "failover" else "reconnect"
        where = (
            f"{switch.from_ingest} → {switch.to_ingest}" if switch.from_ingest != switch.to_ingest else switch.to_ingest
        )
        text = f"{switch.kind} to {where} after {switch.outage_ms / 1000:.1f} s ({switch.reason})"
        self._note(switch.at, kind, "warning", text)

    def _note(self, at: datetime, kind: IncidentKind, severity: Severity, text: str) -> None:
        self.total += 1  # how many were ever noted, so a reader can tell the oldest were let go
        incident = Incident.model_construct(at=at, kind=kind, severity=severity, text=text)
        # Kept in time order: a switch is reported when the new connection publishes, stamped when it did.
        index = len(self._incidents)
        while index > 0 and self._incidents[index - 1].at > at:
            index -= 1
        if len(self._incidents) == self._incidents.maxlen:
            if index == 0:
                return  # older than everything kept
            self._incidents.popleft()
            index -= 1
        self._incidents.insert(index, incident)
        log.info("incident %s: %s", kind, text)

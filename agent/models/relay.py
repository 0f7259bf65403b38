"""Samples of the local relay: what comes in from the encoder, what goes out to the ingest, what was dropped.

Top-level numbers are the primary destination's, flattened so rules, history and /metrics use them directly;
`destinations` holds each ingest apart (one today; several with issue 11). Names carry the host only, never
the key or the URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from agent.models.base import Contract, Sample
from agent.models.network import TcpInfo

DestinationStateName = Literal["idle", "connecting", "live", "retrying", "rejected"]


class RelayDrops(Contract):
    """Frames the relay dropped toward one ingest, by reason (counters since the agent started)."""

    disposable: int = Field(0, description="Non-reference video frames, queue above relay.disposable_drop_ms.")
    until_keyframe: int = Field(0, description="Inter frames until the next keyframe, queue above inter_drop_ms.")
    queue_full: int = Field(0, description="Whole GOPs from the head: the queue hit max_queue_ms or max_queue_bytes.")
    ingest_lost: int = Field(
        0,
        description="Sent to an ingest connection that was then lost unacknowledged, or skipped to resume at a keyframe.",
    )


IngestSwitchKind = Literal["reconnect", "failover", "return"]


class IngestSwitch(Contract):
    """One new connection toward an ingest after the previous one was lost (or a planned return to the
    primary): when, where from, where to, and what the stream lost on the way."""

    destination: str = Field(description="The destination's name (host:port of its first ingest).")
    kind: IngestSwitchKind = Field(
        description="reconnect: same ingest; failover: the next one; return: to the primary."
    )
    from_ingest: str = Field(description="host:port; never a key or a URL.")
    to_ingest: str
    reason: str = Field(description="Why the previous connection ended (redacted).")
    lost_at: datetime = Field(description="When the relay decided the previous connection was lost.")
    at: datetime = Field(description="When the new connection started publishing.")
    outage_ms: float = Field(description="From lost_at to the new connection publishing.")
    lost_media_ms: float = Field(
        description="Stream time that reached no ingest: from the last frame the old ingest acknowledged to the "
        "first one the new ingest got, when frames were lost in between; 0 when none were."
    )
    lost_frames: int = Field(description="Frames sent to the old connection unacknowledged, or dropped meanwhile.")


class RelayDestinationSample(Contract):
    name: str = Field(description="host:port of the ingest; never a key or a URL.")
    state: DestinationStateName
    error: str | None = Field(None, description="Why the last connection failed (redacted).")
    egress_bps: float | None = None
    frames_out_total: int = 0
    bytes_out_total: int = Field(0, description="Media and metadata bytes sent to this destination (message bodies).")
    queue_ms: int = 0
    queue_bytes: int = 0
    queue_peak_ms: int = 0
    queue_peak_bytes: int = 0
    frames_dropped: RelayDrops = Field(default_factory=RelayDrops)
    latency_p50_ms: float | None = Field(None, description="Frame in from the encoder to frame out, last ~4096 frames.")
    latency_p99_ms: float | None = None
    tcp_info: TcpInfo | None = Field(None, description="The kernel's view of the connection to the ingest (Linux).")
    ingest: str | None = Field(None, description="host:port of the ingest in use (primary or a backup).")
    on_backup: bool = Field(False, description="Forwarding to a backup ingest rather than the first one.")
    reconnects_total: int = 0
    failovers_total: int = 0
    last_switch: IngestSwitch | None = None


class RelaySample(Sample):
    SOURCE: ClassVar[str] = "relay"
    NOT_HISTORY: ClassVar[frozenset[str]] = frozenset(
        {"stalls_total", "publishers_refused_total", "bytes_in_total", "bytes_out_total"}
    )
    # The encoder lost (or back) is judged at once, not at the next tick: its alert is due within 1 s.
    PROMPT_FIELDS: ClassVar[tuple[str, ...]] = ("holding",)

    listen: str = Field(description="HOST:PORT the relay listens on.")
    publishing: bool = Field(False, description="An encoder is publishing to the relay.")
    encoder: str | None = Field(None, description="The encoder's flashVer, e.g. 'FMLE/3.0 (compatible; FMSc/1.0)'.")
    video_codec: str | None = None
    audio_codec: str | None = None
    ingress_bps: float | None = Field(None, description="Media bit rate from the encoder.")
    egress_bps: float | None = Field(None, description="Media bit rate toward the primary ingest.")
    video_fps: float | None = None
    keyframe_interval_s: float | None = None
    av_drift_ms: float | None = Field(None, description="Latest audio timestamp minus latest video timestamp.")
    stalled: bool = Field(False, description="No media from the encoder for relay.stall_ms while publishing.")
    stalls_total: int = 0
    queue_ms: int = Field(0, description="Media queued toward the primary ingest, in ms of stream time.")
    queue_bytes: int = 0
    frames_in_total: int = 0
    bytes_in_total: int = Field(0, description="Media and metadata bytes received from encoders (message bodies).")
    bytes_out_total: int = Field(0, description="Media and metadata bytes sent to the primary ingest (message bodies).")
    frames_out_total: int = 0
    frames_dropped_total: int = 0
    frames_dropped_per_s: float | None = Field(None, description="Frames the relay dropped over the last interval.")
    frames_dropped: RelayDrops = Field(default_factory=RelayDrops)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    ingest_rtt_ms: float | None = None
    ingest_rtt_variance_ms: float | None = None
    ingest_retransmits_total: int | None = None
    ingest_unsent_bytes: int | None = None
    ingest_delivery_rate_bps: float | None = None
    publishers_refused_total: int = 0
    connections_dropped_total: int = Field(0, description="Encoder connections closed for bad input or silence.")
    ingest_unreachable: bool = Field(
        False, description="Publishing, but no ingest takes the stream (reconnecting or failing over)."
    )
    going_nowhere: bool = Field(
        False, description="Publishing, and for more than relay.stall_s no destination was live or connecting."
    )
    going_nowhere_reason: str | None = Field(
        None, description="While going_nowhere: each destination's state and why (redacted)."
    )
    holding: bool = Field(
        False, description="The encoder was lost mid-stream; the relay holds the ingest's session with the slate."
    )
    hold_remaining_s: float | None = Field(None, description="Seconds until the hold ends the stream.")
    held_total_s: float = Field(0.0, description="Seconds the relay held the broadcast with the slate this stream.")
    slate_note: str | None = Field(
        None, description="Why no slate can be sent (disconnect protection off), when that is so."
    )
    destinations: list[RelayDestinationSample] = Field(default_factory=list)
    ingest_switches: list[IngestSwitch] = Field(
        default_factory=list, description="Reconnects and failovers since the previous sample (each becomes an alert)."
    )

"""The `uplink` sample: the kernel's view (sock_diag tcp_info) of the encoder's own connection to its ingest.

Read at 4 Hz while a stream is live. It says what the link does before the encoder's counters can:
RTT against its baseline, bytes waiting in the socket, what is really acknowledged, and the early-warning
verdict with the bitrate the link can carry (agent/net/uplink_tracker.py computes them).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from agent.models.base import Sample

UplinkState = Literal["unavailable", "searching", "ok", "congested"]


class UplinkSample(Sample):
    SOURCE: ClassVar[str] = "uplink"
    NOT_HISTORY: ClassVar[frozenset[str]] = frozenset({"local_port", "pid"})
    # A change of these is worth a rule evaluation now, not at the next 1 Hz tick (agent/runtime.py).
    PROMPT_FIELDS: ClassVar[tuple[str, ...]] = ("congested", "state")

    state: UplinkState
    note: str | None = Field(None, description="Why there is no reading (no stream found, not Linux, ...).")
    connection: str | None = Field(None, description="host:port of the ingest the encoder sends to; never a key.")
    local_port: int | None = None
    process: str | None = Field(None, description="The encoder process owning the connection, when known.")
    pid: int | None = None
    found_by: Literal["obs", "ffmpeg", "ingest"] | None = Field(
        None, description="How the connection was found: OBS's stream server, an ffmpeg's output, ingest.primary."
    )
    rtt_ms: float | None = Field(None, description="The kernel's smoothed RTT.")
    min_rtt_ms: float | None = Field(None, description="The lowest RTT the kernel saw on it: the baseline.")
    rtt_variance_ms: float | None = None
    retransmits_per_s: float | None = Field(None, description="Segments retransmitted per second since the last read.")
    retransmits_total: int | None = None
    unsent_bytes: int | None = Field(None, description="Written by the encoder, not yet sent (tcpi_notsent_bytes).")
    unacked_bytes: int | None = Field(None, description="Sent, not yet acknowledged (in flight).")
    delivery_rate_bps: float | None = Field(None, description="The kernel's latest delivery-rate sample, bits/s.")
    delivery_rate_app_limited: bool | None = Field(
        None, description="True when the encoder, not the link, limited that delivery-rate sample."
    )
    acked_bps: float | None = Field(None, description="Bits acknowledged per second since the last read: what left.")
    send_congestion_window_segments: int | None = None
    sndbuf_limited_ratio: float | None = Field(
        None, description="Share of the last interval limited by the send buffer."
    )
    rwnd_limited_ratio: float | None = Field(None, description="Share of the last interval limited by the receiver.")
    congested: bool = Field(False, description="Early warning: the path to the ingest stopped keeping up.")
    congested_for_s: float | None = None
    congestion_reason: str | None = None
    link_rate_bps: float | None = Field(
        None, description="What the link carried while congested (delivery rate and acknowledged throughput)."
    )
    suggested_video_bitrate_kbps: int | None = Field(
        None, description="A video bitrate the link can carry, with headroom and audio taken off."
    )
    recovered_at_s_ago: float | None = Field(
        None, description="Seconds since the last congestion cleared (shown for a while after a recovery)."
    )

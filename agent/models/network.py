"""Samples of the network stability source: RTT, jitter, loss and reachability per ingest target."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from agent.models.base import Contract, Sample

TargetRole = Literal["primary", "backup", "extra"]
LinkKind = Literal["wired", "wifi", "unknown"]


class TcpInfo(Contract):
    """The kernel's view of a live connection to the ingest (Linux TCP_INFO)."""

    rtt_ms: float
    rtt_variance_ms: float
    retransmits_total: int
    bytes_acked: int
    send_congestion_window: int | None = None
    bytes_sent: int | None = Field(None, description="Bytes handed to the network, retransmissions included.")
    not_sent_bytes: int | None = Field(None, description="Bytes queued in the socket, not yet sent.")
    sacked_bytes: int | None = Field(
        None, description="Bytes the peer has (selectively acknowledged) beyond the cumulative ack, about."
    )
    delivery_rate_bps: int | None = Field(None, description="The kernel's recent delivery rate estimate (bit/s).")


class TargetStability(Contract):
    name: str = Field(description="host:port of the target; never a key or a full URL.")
    role: TargetRole
    reachable: bool | None = Field(None, description="None until the first probe finished.")
    dns_ms: float | None = None
    rtt_p50_ms_10s: float | None = None
    rtt_p95_ms_10s: float | None = None
    rtt_max_ms_10s: float | None = None
    rtt_p50_ms_60s: float | None = None
    rtt_p95_ms_60s: float | None = None
    rtt_max_ms_60s: float | None = None
    jitter_ms: float | None = Field(None, description="RFC 3550 smoothed mean of consecutive RTT differences.")
    loss_ratio_10s: float | None = None
    loss_ratio_60s: float | None = None
    icmp_rtt_ms: float | None = None
    tcp_info: TcpInfo | None = Field(None, description="From a live RTMP connection, when one exists.")
    error: str | None = None
    last_rtt_ms: float | None = Field(None, description="RTT of the latest probe (or TCP_INFO reading).")
    rtt_from: Literal["tcp_connect", "tcp_info"] | None = Field(
        None, description="Where the RTT comes from: probe connections, or the kernel's view of a live connection."
    )
    probes_10s: int = 0


class LinkInfo(Contract):
    interface: str | None = None
    kind: LinkKind = "unknown"
    wifi_signal_dbm: float | None = None
    link_speed_mbps: int | None = None
    note: str | None = Field(None, description="Why the link facts are missing, e.g. not available on this platform.")


class UploadUser(Contract):
    """Another process sending on the uplink (where the OS lets us see it)."""

    pid: int
    name: str
    sent_bps: float | None = None


class NetworkSample(Sample):
    SOURCE: ClassVar[str] = "network"

    targets: list[TargetStability] = Field(default_factory=list)
    # The primary ingest's figures, flattened so rules and history can use them directly.
    ingest_reachable: bool | None = None
    ingest_rtt_ms: float | None = Field(None, description="Median RTT to the primary ingest over 10 s.")
    ingest_rtt_p95_ms: float | None = None
    ingest_jitter_ms: float | None = None
    ingest_loss_ratio: float | None = Field(None, description="Probes lost over 10 s, 0..1.")
    tcp_retransmits_total: int | None = None
    link: LinkInfo = Field(default_factory=LinkInfo)
    on_wifi: bool = False
    upload_users: list[UploadUser] = Field(default_factory=list)
    upload_users_note: str | None = Field(None, description="Why upload_users may be incomplete or empty.")

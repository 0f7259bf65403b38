"""The kernel's view of a live TCP connection (Linux `TCP_INFO`): RTT, variance, retransmits, bytes acked.

Reading it costs one getsockopt and no packets, so the network source prefers it to a probe whenever
a live connection to the ingest exists. Where the kernel has no TCP_INFO (agent/os_features.py) every
read returns None and the callers fall back (probes, protocol acknowledgements).
"""

from __future__ import annotations

import socket
import struct

from agent import os_features
from agent.models import TcpInfo
from agent.net.sockstate import SOCKET_GONE

_BUFFER = 256
# struct tcp_info (linux/tcp.h): 8 one-byte fields, 24 u32, then u64 pacing_rate, max_pacing_rate,
# bytes_acked, bytes_received; u32 segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in,
# data_segs_out; u64 delivery_rate, busy_time, rwnd_limited, sndbuf_limited; u32 delivered,
# delivered_ce; u64 bytes_sent, bytes_retrans.
_HEAD = struct.Struct("=8B24I")
_U64 = struct.Struct("=Q")
_U32 = {
    "snd_mss": 8 + 4 * 2,
    "sacked": 8 + 4 * 5,
    "rtt": 8 + 4 * 15,
    "rttvar": 8 + 4 * 16,
    "snd_cwnd": 8 + 4 * 18,
    "total_retrans": 8 + 4 * 23,
}
_BYTES_ACKED = 120
_LAST_ACK_RECV = 8 + 4 * 12  # u32 ms since the last ACK arrived
_U32_AT = struct.Struct("=I")
_NOTSENT_BYTES = 144
_DELIVERY_RATE = 160  # bytes per second (Linux 4.9+)
_BYTES_SENT = 208


def supported() -> bool:
    return os_features.current().tcp_info is not None


def parse_tcp_info(raw: bytes) -> TcpInfo | None:
    """Parse the bytes of `getsockopt(IPPROTO_TCP, TCP_INFO)`; None if too short to hold bytes_acked."""
    if len(raw) < _BYTES_ACKED + 8:
        return None

    def u32(offset: int) -> int:
        return int(struct.unpack_from("=I", raw, offset)[0])

    def u64(offset: int) -> int | None:
        return int(struct.unpack_from("=Q", raw, offset)[0]) if len(raw) >= offset + 8 else None

    return TcpInfo(
        rtt_ms=u32(_U32["rtt"]) / 1000,
        rtt_variance_ms=u32(_U32["rttvar"]) / 1000,
        retransmits_total=u32(_U32["total_retrans"]),
        bytes_acked=u64(_BYTES_ACKED) or 0,
        send_congestion_window=u32(_U32["snd_cwnd"]),
        bytes_sent=u64(_BYTES_SENT),
        not_sent_bytes=u32(_NOTSENT_BYTES) if len(raw) >= _NOTSENT_BYTES + 4 else None,
        sacked_bytes=u32(_U32["sacked"]) * u32(_U32["snd_mss"]),
        delivery_rate_bps=None if (rate := u64(_DELIVERY_RATE)) is None else rate * 8,
    )


def read_tcp_info(sock: socket.socket) -> TcpInfo | None:
    """TCP_INFO of a connected socket, or None (not on this platform, closed or closing socket on any event
    loop, not TCP)."""
    option = os_features.current().tcp_info
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _BUFFER)
    except SOCKET_GONE:  # closed under us (sockstate.py): unknown, never an error
        return None
    return parse_tcp_info(raw)


def read_bytes_acked(sock: socket.socket) -> int | None:
    """Only `tcpi_bytes_acked`: what the relay's connection watch needs a few times a second, without
    building a whole `TcpInfo`. None where `read_tcp_info` would give None."""
    option = os_features.current().tcp_info
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _BYTES_ACKED + 8)
    except SOCKET_GONE:  # closed under us (sockstate.py): unknown, never an error
        return None
    return int(_U64.unpack_from(raw, _BYTES_ACKED)[0]) if len(raw) >= _BYTES_ACKED + 8 else None


def read_ack_progress(sock: socket.socket) -> tuple[int, float] | None:
    """(`tcpi_bytes_acked`, seconds since the last ACK arrived): the relay's stall rule dates the last
    progress by the kernel's clock, not by when it happened to look. None where `read_bytes_acked` is."""
    option = os_features.current().tcp_info
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _BYTES_ACKED + 8)
    except SOCKET_GONE:
        return None
    if len(raw) < _BYTES_ACKED + 8:
        return None
    return int(_U64.unpack_from(raw, _BYTES_ACKED)[0]), _U32_AT.unpack_from(raw, _LAST_ACK_RECV)[0] / 1000


assert _HEAD.size == 104  # the layout above assumes this; a change would be a bug here, not in the kernel

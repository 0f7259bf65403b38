"""The sock_diag netlink codec (sans-I/O): the request `ss -ti` sends, and its replies as typed records.

`dump_request()` builds the bytes of one SOCK_DIAG_BY_FAMILY dump of TCP sockets, filtered in the kernel
(a tiny inet_diag bytecode program) to the connections towards one destination, asking for struct
tcp_info (INET_DIAG_INFO). `DumpParser` takes the reply datagrams and yields `TcpDiagRecord`s until
NLMSG_DONE. No socket here: `agent/net/sockdiag_reader.py` sends and receives; tests replay captured bytes.
Layouts: linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h, linux/tcp.h (struct tcp_info).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_INFO = 2
INET_DIAG_BC_D_COND = 8
TCP_ESTABLISHED = 1
TCP_STATE_NAMES = {
    1: "established",
    2: "syn_sent",
    3: "syn_recv",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    10: "listen",
    11: "closing",
}

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_SOCKID = struct.Struct(">HH16s16sI8s")  # sport, dport (network order), src, dst, interface, cookie
_REQ_V2 = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states; then the socket id
_DIAG_MSG = struct.Struct("=BBBB")  # family, state, timer, retrans; then the socket id, then _DIAG_TAIL
_DIAG_TAIL = struct.Struct("=IIIII")  # expires, rqueue, wqueue, uid, inode
_RTATTR = struct.Struct("=HH")
_BC_OP = struct.Struct("=BBH")  # code, yes, no
_HOSTCOND = struct.Struct("=BBxxi")  # family, prefix_len, port (-1: any)
_ERRNO = struct.Struct("=i")


class SockDiagError(Exception):
    """The kernel refused the request (an NLMSG_ERROR with a negative errno), or a reply is malformed."""


def _align4(length: int) -> int:
    return (length + 3) & ~3


def _destination_filter(address: str | None, port: int | None) -> bytes:
    """An inet_diag bytecode program accepting sockets whose remote end is address:port.

    One INET_DIAG_BC_D_COND op: `yes` jumps to the end (accept), `no` past the end (reject: the kernel
    accepts a socket when the program ends exactly at its length).
    """
    if address is None:
        family, prefix_bits, packed = socket.AF_UNSPEC, 0, b""
    else:
        parsed = ipaddress.ip_address(address)
        family = socket.AF_INET if parsed.version == 4 else socket.AF_INET6
        packed = parsed.packed
        prefix_bits = len(packed) * 8
    cond = _HOSTCOND.pack(family, prefix_bits, -1 if port is None else port) + packed
    length = _BC_OP.size + len(cond)
    return _BC_OP.pack(INET_DIAG_BC_D_COND, length, length + 4) + cond


def dump_request(
    family: int,
    *,
    address: str | None = None,
    port: int | None = None,
    states_mask: int = 1 << TCP_ESTABLISHED,
    sequence: int = 1,
) -> bytes:
    """The bytes of one dump of TCP sockets of `family` (AF_INET or AF_INET6) with their tcp_info.

    With `address` and/or `port`, the kernel itself keeps only connections to that destination, so the
    reply holds a handful of sockets however many the machine has.
    """
    sockid = _SOCKID.pack(0, 0, b"", b"", 0, b"")
    body = _REQ_V2.pack(family, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0, states_mask) + sockid
    if address is not None or port is not None:
        program = _destination_filter(address, port)
        body += _RTATTR.pack(_RTATTR.size + len(program), INET_DIAG_REQ_BYTECODE) + program
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0)
    return header + body


@dataclass(frozen=True, slots=True)
class TcpInfoFields:
    """struct tcp_info as the kernel filled it. Times in microseconds, rates in bytes per second.

    Fields after `total_retrans` are None when the kernel is too old to send them.
    """

    state: int
    ca_state: int
    retransmits: int
    backoff: int
    rto_us: int
    snd_mss: int
    unacked_segments: int
    sacked_segments: int
    lost_segments: int
    retrans_segments: int
    last_data_sent_ms: int
    last_ack_recv_ms: int
    rtt_us: int
    rttvar_us: int
    snd_ssthresh: int
    snd_cwnd: int
    total_retrans: int
    pacing_rate_bps: int | None = None
    bytes_acked: int | None = None
    bytes_received: int | None = None
    segs_out: int | None = None
    notsent_bytes: int | None = None
    min_rtt_us: int | None = None
    data_segs_out: int | None = None
    delivery_rate_bytes_per_s: int | None = None
    delivery_rate_app_limited: bool | None = None
    busy_time_us: int | None = None
    rwnd_limited_us: int | None = None
    sndbuf_limited_us: int | None = None
    delivered_segments: int | None = None
    bytes_sent: int | None = None
    bytes_retrans: int | None = None
    snd_wnd: int | None = None


# Offsets in struct tcp_info (linux/tcp.h): 8 one-byte fields, then u32s from offset 8, u64s from 104.
_HEAD_U8 = struct.Struct("=8B")
_U32_FROM_8 = struct.Struct("=24I")
_MIN_TCP_INFO = 104
_OPTIONAL: tuple[tuple[str, int, str], ...] = (
    ("pacing_rate_bps", 104, "Q"),
    ("bytes_acked", 120, "Q"),
    ("bytes_received", 128, "Q"),
    ("segs_out", 136, "I"),
    ("notsent_bytes", 144, "I"),
    ("min_rtt_us", 148, "I"),
    ("data_segs_out", 156, "I"),
    ("delivery_rate_bytes_per_s", 160, "Q"),
    ("busy_time_us", 168, "Q"),
    ("rwnd_limited_us", 176, "Q"),
    ("sndbuf_limited_us", 184, "Q"),
    ("delivered_segments", 192, "I"),
    ("bytes_sent", 200, "Q"),
    ("bytes_retrans", 208, "Q"),
    ("snd_wnd", 228, "I"),
)


def parse_tcp_info(raw: bytes | memoryview) -> TcpInfoFields:
    """struct tcp_info from its bytes (any kernel since 2.6: longer structs add the optional fields)."""
    if len(raw) < _MIN_TCP_INFO:
        raise SockDiagError(f"tcp_info of {len(raw)} bytes, expected at least {_MIN_TCP_INFO}")
    head = _HEAD_U8.unpack_from(raw, 0)
    u32 = _U32_FROM_8.unpack_from(raw, 8)
    optional: dict[str, int | bool | None] = {}
    for name, offset, code in _OPTIONAL:
        size = 8 if code == "Q" else 4
        if len(raw) >= offset + size:
            optional[name] = struct.unpack_from("=" + code, raw, offset)[0]
    if "delivery_rate_bytes_per_s" in optional:
        optional["delivery_rate_app_limited"] = bool(head[7] & 1)
    return TcpInfoFields(
        state=head[0],
        ca_state=head[1],
        retransmits=head[2],
        backoff=head[4],
        rto_us=u32[0],
        snd_mss=u32[2],
        unacked_segments=u32[4],
        sacked_segments=u32[5],
        lost_segments=u32[6],
        retrans_segments=u32[7],
        last_data_sent_ms=u32[9],
        last_ack_recv_ms=u32[12],
        rtt_us=u32[15],
        rttvar_us=u32[16],
        snd_ssthresh=u32[17],
        snd_cwnd=u32[18],
        total_retrans=u32[23],
        **optional,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class TcpDiagRecord:
    """One TCP socket of a dump: its endpoints, queues, owner inode and (when sent) its tcp_info."""

    family: int
    state: int
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    receive_queue_bytes: int
    send_queue_bytes: int  # written but not yet acknowledged: unsent + in flight
    uid: int
    inode: int
    tcp_info: TcpInfoFields | None

    @property
    def state_name(self) -> str:
        return TCP_STATE_NAMES.get(self.state, str(self.state))


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    address = ipaddress.IPv6Address(raw)
    return str(address.ipv4_mapped) if address.ipv4_mapped is not None else str(address)


def parse_diag_message(payload: bytes | memoryview) -> TcpDiagRecord:
    """One inet_diag_msg (the payload after its nlmsghdr) with its attributes."""
    fixed = _DIAG_MSG.size + _SOCKID.size + _DIAG_TAIL.size
    if len(payload) < fixed:
        raise SockDiagError(f"inet_diag_msg of {len(payload)} bytes, expected at least {fixed}")
    family, state, _timer, _retrans = _DIAG_MSG.unpack_from(payload, 0)
    sport, dport, src, dst, _interface, _cookie = _SOCKID.unpack_from(payload, _DIAG_MSG.size)
    _expires, rqueue, wqueue, uid, inode = _DIAG_TAIL.unpack_from(payload, _DIAG_MSG.size + _SOCKID.size)
    info: TcpInfoFields | None = None
    offset = fixed
    while offset + _RTATTR.size <= len(payload):
        length, kind = _RTATTR.unpack_from(payload, offset)
        if length < _RTATTR.size or offset + length > len(payload):
            raise SockDiagError(f"attribute of length {length} at offset {offset} overruns its message")
        if kind == INET_DIAG_INFO:
            info = parse_tcp_info(bytes(payload[offset + _RTATTR.size : offset + length]))
        offset += _align4(length)
    return TcpDiagRecord(
        family=family,
        state=state,
        local_address=_address(family, src),
        local_port=sport,
        remote_address=_address(family, dst),
        remote_port=dport,
        receive_queue_bytes=rqueue,
        send_queue_bytes=wqueue,
        uid=uid,
        inode=inode,
        tcp_info=info,
    )


class DumpParser:
    """Feed the datagrams of one dump's reply; read the records; `done` once NLMSG_DONE arrived."""

    def __init__(self, sequence: int = 1) -> None:
        self.sequence = sequence
        self.done = False
        self.records: list[TcpDiagRecord] = []

    def feed(self, datagram: bytes) -> None:
        """Parse one datagram (one or more netlink messages). Raises SockDiagError on an error reply."""
        self.records.extend(self._messages(memoryview(datagram)))

    def _messages(self, view: memoryview) -> Iterator[TcpDiagRecord]:
        offset = 0
        while offset + _NLMSGHDR.size <= len(view) and not self.done:
            length, kind, _flags, sequence, _pid = _NLMSGHDR.unpack_from(view, offset)
            if length < _NLMSGHDR.size or offset + length > len(view):
                raise SockDiagError(f"netlink message of length {length} at offset {offset} overruns the datagram")
            payload = view[offset + _NLMSGHDR.size : offset + length]
            offset += _align4(length)
            if sequence != self.sequence:
                continue  # a late reply to an earlier request
            if kind == NLMSG_DONE:
                self.done = True
            elif kind == NLMSG_ERROR:
                errno = -_ERRNO.unpack_from(payload, 0)[0] if len(payload) >= _ERRNO.size else 0
                if errno:
                    self.done = True
                    raise SockDiagError(f"the kernel refused the sock_diag request: errno {errno}")
            elif kind == SOCK_DIAG_BY_FAMILY:
                yield parse_diag_message(payload)

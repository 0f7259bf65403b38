"""The sock_diag codec against real replies captured on Linux (tests/fixtures/sockdiag/README.md)."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from agent.net.sockdiag import DumpParser, SockDiagError, TcpDiagRecord, dump_request, parse_tcp_info
from tests.conftest import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "sockdiag"


def datagrams(name: str) -> list[bytes]:
    raw = (FIXTURES / f"{name}.reply.bin").read_bytes()
    found, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        found.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return found


def expected(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def parse(name: str) -> list[TcpDiagRecord]:
    parser = DumpParser(int(expected(name)["sequence"]))  # type: ignore[call-overload]
    for datagram in datagrams(name):
        parser.feed(datagram)
    assert parser.done
    return parser.records


def test_request_bytes_match_what_was_sent_to_the_kernel() -> None:
    facts = expected("ipv4_stalled_sender")
    built = dump_request(socket.AF_INET, address="127.0.0.1", port=int(facts["remote_port"]), sequence=7)  # type: ignore[call-overload]
    assert built == (FIXTURES / "ipv4_stalled_sender.request.bin").read_bytes()
    assert struct.unpack_from("=I", built)[0] == len(built)


def test_stalled_sender_shows_unsent_bytes_and_send_buffer_limited_time() -> None:
    facts = expected("ipv4_stalled_sender")
    (record,) = parse("ipv4_stalled_sender")  # the kernel filtered out the receiving end
    assert (record.remote_address, record.remote_port) == ("127.0.0.1", facts["remote_port"])
    assert record.local_port == facts["sender_local_port"]
    assert record.state_name == "established"
    info = record.tcp_info
    assert info is not None
    assert info.bytes_sent is not None and info.bytes_acked is not None and info.notsent_bytes is not None
    # Everything written was sent once (bytes_sent counts retransmissions again) or is still unsent.
    assert info.bytes_retrans is not None
    assert info.bytes_sent - info.bytes_retrans + info.notsent_bytes == facts["bytes_written"]
    assert info.notsent_bytes > 0
    assert record.send_queue_bytes == int(facts["bytes_written"]) - (info.bytes_acked - 1)  # type: ignore[call-overload]
    assert info.sndbuf_limited_us is not None and info.rwnd_limited_us is not None
    assert info.rwnd_limited_us + info.sndbuf_limited_us > 0
    assert info.min_rtt_us is not None and 0 < info.min_rtt_us <= info.rtt_us + info.rttvar_us * 4
    assert info.delivery_rate_bytes_per_s is not None and info.delivery_rate_bytes_per_s > 0
    assert info.snd_cwnd > 0 and info.snd_mss > 0


def test_a_reply_over_several_datagrams_holds_every_connection() -> None:
    facts = expected("ipv4_fifty_by_port")
    assert len(datagrams("ipv4_fifty_by_port")) > 1
    records = parse("ipv4_fifty_by_port")
    assert sorted(record.local_port for record in records) == facts["local_ports"]
    assert {record.remote_port for record in records} == {facts["remote_port"]}
    assert all(record.tcp_info is not None for record in records)


def test_ipv6_addresses_and_ports() -> None:
    facts = expected("ipv6_by_address")
    (record,) = parse("ipv6_by_address")
    assert record.family == socket.AF_INET6
    assert (record.remote_address, record.remote_port, record.local_port) == (
        "::1",
        facts["remote_port"],
        facts["local_port"],
    )
    assert record.tcp_info is not None and record.tcp_info.bytes_sent == 10000


def test_a_refused_request_raises_with_the_errno() -> None:
    parser = DumpParser(10)
    with pytest.raises(SockDiagError, match=r"errno 22"):
        for datagram in datagrams("refused_filter"):
            parser.feed(datagram)
    assert parser.done


def test_replies_to_another_request_are_skipped() -> None:
    parser = DumpParser(99)
    for datagram in datagrams("ipv4_stalled_sender"):
        parser.feed(datagram)
    assert parser.records == [] and not parser.done


@pytest.mark.parametrize("cut", [1, 15, 40, 100, 200])
def test_a_truncated_datagram_raises_instead_of_inventing_figures(cut: int) -> None:
    first = datagrams("ipv4_stalled_sender")[0]
    # keep the header's length as sent: the message overruns what arrived
    with pytest.raises(SockDiagError):
        DumpParser(7).feed(first[: len(first) - cut] if cut < len(first) else first[:20])


def test_an_older_kernels_shorter_tcp_info_leaves_newer_fields_empty() -> None:
    (record,) = parse("ipv4_stalled_sender")
    assert record.tcp_info is not None
    full = datagrams("ipv4_stalled_sender")[0]
    offset = 16 + 72  # nlmsghdr, inet_diag_msg; then attributes until INET_DIAG_INFO (type 2)
    while struct.unpack_from("=HH", full, offset)[1] != 2:
        offset += (struct.unpack_from("=H", full, offset)[0] + 3) & ~3
    raw = full[offset + 4 : offset + struct.unpack_from("=H", full, offset)[0]]
    short = parse_tcp_info(raw[:160])
    assert short.rtt_us == record.tcp_info.rtt_us and short.notsent_bytes == record.tcp_info.notsent_bytes
    assert short.delivery_rate_bytes_per_s is None and short.bytes_sent is None
    with pytest.raises(SockDiagError):
        parse_tcp_info(raw[:100])

"""The simple handshake in both roles, talking to each other byte by byte, and refusing other versions."""

from __future__ import annotations

import pytest

from agent.errors import ProtocolError
from agent.rtmp.handshake import PACKET_SIZE, ClientHandshake, ServerHandshake


def test_client_and_server_complete_the_handshake_and_echo_each_others_random_block() -> None:
    client = ClientHandshake(epoch_ms=5, random_bytes=b"c" * (PACKET_SIZE - 8))
    server = ServerHandshake(epoch_ms=9, random_bytes=b"s" * (PACKET_SIZE - 8))
    c0c1 = client.data_to_send()
    assert len(c0c1) == 1 + PACKET_SIZE and c0c1[0] == 3
    assert c0c1[5:9] == b"\x00\x00\x00\x00"  # zeros: asks for the simple handshake
    for byte in c0c1:  # one byte at a time: the server waits for the whole of C1
        server.receive_data(bytes([byte]))
    s0s1s2 = server.data_to_send()
    assert len(s0s1s2) == 1 + 2 * PACKET_SIZE
    assert s0s1s2[1 + PACKET_SIZE + 8 :] == b"c" * (PACKET_SIZE - 8)  # S2 echoes C1
    leftover = client.receive_data(s0s1s2 + b"chunk data")
    assert client.complete and leftover == b"chunk data"
    c2 = client.data_to_send()
    assert c2[8:] == b"s" * (PACKET_SIZE - 8)  # C2 echoes S1
    assert not server.complete
    assert server.receive_data(c2 + b"connect") == b"connect"
    assert server.complete


def test_client_sends_c2_as_soon_as_s1_is_in_even_before_s2() -> None:
    client = ClientHandshake()
    client.data_to_send()
    client.receive_data(b"\x03" + bytes(PACKET_SIZE))
    assert len(client.data_to_send()) == PACKET_SIZE
    assert not client.complete


@pytest.mark.parametrize("role", [ClientHandshake, ServerHandshake])
def test_a_peer_asking_for_another_version_is_a_protocol_error(role: type[ClientHandshake | ServerHandshake]) -> None:
    handshake = role()
    with pytest.raises(ProtocolError, match="version 22"):
        handshake.receive_data(b"\x16\x03\x01" + bytes(PACKET_SIZE))  # a TLS ClientHello/ServerHello starts 0x16

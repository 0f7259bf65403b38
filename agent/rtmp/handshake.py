"""The RTMP handshake (simple, version 3) for both roles, without I/O: bytes in, bytes to send out.

    client                        server
    C0 C1  ---------------------->
           <----------------------  S0 S1 S2   (S2 echoes C1)
    C2     ---------------------->             (C2 echoes S1)

C1/S1 carry zeros where the digest ("complex") handshake would put its version, which tells
nginx-rtmp, Twitch and the like to answer with the simple handshake. Not for RTMPE.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from agent.errors import ProtocolError

RTMP_VERSION: Final = 3
PACKET_SIZE: Final = 1536

_TIMES = struct.Struct(">II")


def _packet(epoch_ms: int, random_bytes: bytes | None) -> bytes:
    body = random_bytes if random_bytes is not None else os.urandom(PACKET_SIZE - 8)
    if len(body) != PACKET_SIZE - 8:
        raise ValueError(f"handshake random block must be {PACKET_SIZE - 8} bytes")
    return _TIMES.pack(epoch_ms & 0xFFFFFFFF, 0) + body


def _echo(packet: bytes, our_epoch_ms: int) -> bytes:
    """C2/S2: the peer's time and random block, with our read time as the second field."""
    return packet[:4] + struct.pack(">I", our_epoch_ms & 0xFFFFFFFF) + packet[8:]


class _Handshake:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._outgoing = bytearray()
        self.complete = False
        self.peer_packet: bytes = b""  # C1 or S1 as received, for whoever wants to inspect it

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed bytes from the peer; once complete, returns whatever followed the handshake (chunk data)."""
        if self.complete:
            return bytes(data)
        self._buffer += data
        return self._advance()

    def _advance(self) -> bytes:
        raise NotImplementedError

    def _check_version(self, version: int, who: str) -> None:
        if version != RTMP_VERSION:
            raise ProtocolError(
                f"{who} asked for RTMP version {version}, only version {RTMP_VERSION} is supported "
                "(is this an RTMP endpoint? rtmps:// endpoints need TLS)"
            )


class ClientHandshake(_Handshake):
    """The publisher's side: C0+C1 are ready to send as soon as it is created."""

    def __init__(self, epoch_ms: int = 0, random_bytes: bytes | None = None) -> None:
        super().__init__()
        self._epoch_ms = epoch_ms
        self._outgoing += bytes([RTMP_VERSION]) + _packet(epoch_ms, random_bytes)
        self._sent_c2 = False

    def _advance(self) -> bytes:
        if not self._sent_c2:
            if len(self._buffer) < 1 + PACKET_SIZE:
                return b""
            self._check_version(self._buffer[0], "the server")
            self.peer_packet = bytes(self._buffer[1 : 1 + PACKET_SIZE])
            del self._buffer[: 1 + PACKET_SIZE]
            self._outgoing += _echo(self.peer_packet, self._epoch_ms)
            self._sent_c2 = True
        if len(self._buffer) < PACKET_SIZE:
            return b""
        # S2 should echo C1; servers differ in what they put in the time fields, so it is not checked.
        rest = bytes(self._buffer[PACKET_SIZE:])
        self._buffer.clear()
        self.complete = True
        return rest


class ServerHandshake(_Handshake):
    """The ingest's side: answers C0+C1 with S0+S1+S2 at once, then waits for C2."""

    def __init__(self, epoch_ms: int = 0, random_bytes: bytes | None = None) -> None:
        super().__init__()
        self._epoch_ms = epoch_ms
        self._random = random_bytes
        self._answered = False

    def _advance(self) -> bytes:
        if not self._answered:
            if len(self._buffer) < 1 + PACKET_SIZE:
                return b""
            self._check_version(self._buffer[0], "the client")
            self.peer_packet = bytes(self._buffer[1 : 1 + PACKET_SIZE])
            del self._buffer[: 1 + PACKET_SIZE]
            self._outgoing += bytes([RTMP_VERSION]) + _packet(self._epoch_ms, self._random)
            self._outgoing += _echo(self.peer_packet, self._epoch_ms)
            self._answered = True
        if len(self._buffer) < PACKET_SIZE:
            return b""
        rest = bytes(self._buffer[PACKET_SIZE:])
        self._buffer.clear()
        self.complete = True
        return rest

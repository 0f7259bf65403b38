"""The lag probe's own process (see LagProbe in relay_bed.py): an RTMP connection to the relay that sends a Ping
Request every 50 ms and prints each round trip as `rtt SENT_AT SECONDS` (CLOCK_MONOTONIC), `reconnect` when the
relay closed it (the connection cap may evict it). Runs until terminated."""

from __future__ import annotations

import socket
import struct
import sys
import time


def _ping(value: int) -> bytes:
    # Chunk stream 2, type 4 (User Control), body: event 6 (Ping Request) and a 32-bit value.
    return bytes([0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0]) + struct.pack(">HI", 6, value)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"\x03" + bytes(1536))
    answer = b""
    while len(answer) < 1 + 2 * 1536:
        piece = sock.recv(8192)
        if not piece:
            raise ConnectionError("closed during the handshake")
        answer += piece
    sock.sendall(answer[1 : 1 + 1536])  # C2 echoes S1
    return sock


def main(port: int) -> None:
    value = 0
    while True:
        try:
            sock = _connect(port)
        except OSError:
            print("reconnect", flush=True)
            time.sleep(0.05)
            continue
        with sock:
            try:
                while True:
                    value = (value + 1) % 2**32
                    sent = time.monotonic()
                    sock.sendall(_ping(value))
                    if not sock.recv(4096):
                        raise ConnectionError("closed")
                    print(f"rtt {sent:.6f} {time.monotonic() - sent:.6f}", flush=True)
                    time.sleep(0.05)
            except OSError:
                print("reconnect", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))

"""What reading a socket's state raises once the socket is closed, on every event loop we run on.

A transport's socket (`get_extra_info("socket")`) outlives the connection: asyncio's TransportSocket then
raises OSError (EBADF) from getsockopt/getsockname/getpeername, uvloop's PseudoSocket raises ValueError
("negative file descriptor"). Whether the socket is closed yet when a lost connection is examined is a race,
so every reader of socket state catches `SOCKET_GONE` and answers "unknown" (None). Not for reading anything.
"""

from __future__ import annotations

from typing import Any, Final

# OSError: asyncio's TransportSocket (and plain sockets); ValueError: uvloop's PseudoSocket.
SOCKET_GONE: Final = (OSError, ValueError)


def is_open(sock: Any) -> bool:
    """Whether `sock` still has a file descriptor (a closed one of either loop has -1, or raises)."""
    try:
        return int(sock.fileno()) >= 0
    except SOCKET_GONE:
        return False

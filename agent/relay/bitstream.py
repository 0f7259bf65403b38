"""A big-endian bit reader with Exp-Golomb codes, for the parameter sets a slate must match (stream_shape.py,
hevc_shape.py). Reads an RBSP; not an encoder, and not for anything on the forwarding path.
"""

from __future__ import annotations


class Bits:
    """Reads bits MSB first; IndexError past the end."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def skip(self, count: int) -> None:
        if (self._pos + count + 7) >> 3 > len(self._data):
            raise IndexError("past the end of the RBSP")
        self._pos += count

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def unescape(nal: bytes) -> bytes:
    """The RBSP: emulation prevention bytes (00 00 03) removed."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")

"""Whether the stream goes anywhere: the encoder publishing while no destination is live or connecting.

Each destination reconnects and fails over on its own, and `relay_ingest_unreachable` says when the first
one cannot reach an ingest. This watch covers what those cannot see: every destination idle (its task
gone) or refused while the encoder keeps publishing happily (issue 25: a destination's task had died and nothing
said so). Past `relay.stall_s` it holds, with each destination's state and error as its reason; it ends as
soon as one destination is live or connecting again. Not for judging a single connection (connection_watch.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# "retrying" is a reconnect under way, between two attempts (its backoff): connecting, for this watch.
_TRYING = ("live", "connecting", "retrying")


class _Forwarder(Protocol):  # what a Destination shows of itself
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def last_error(self) -> str | None: ...


class GoingNowhere:
    """`observe(publishing, destinations, now_s)` each sample: the reason while the stream goes nowhere, else None."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._since_s: float | None = None

    def observe(self, publishing: bool, destinations: Sequence[_Forwarder], now_s: float) -> str | None:
        if not publishing or not destinations or any(d.state in _TRYING for d in destinations):
            self._since_s = None
            return None
        if self._since_s is None:
            self._since_s = now_s
        waited_s = now_s - self._since_s
        if waited_s <= self.stall_s:
            return None
        states = "; ".join(f"{d.name} {d.state}" + (f" ({d.last_error})" if d.last_error else "") for d in destinations)
        return f"for {waited_s:.0f} s no destination is live or connecting: {states}"

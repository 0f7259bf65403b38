"""The Textual messages the agent client posts to the app: one per kind of thing it learned.

The client never touches widgets; the app turns these messages into state, and screens render
from that state (worker -> message -> reactive -> render).
"""

from __future__ import annotations

from typing import Literal

from textual.message import Message

from agent.models import AlertChange, HealthSnapshot, JobFinished, Progress, SourceStatus

ConnectionState = Literal["connecting", "connected", "disconnected", "unauthorized"]


class SnapshotReceived(Message):
    """A health snapshot (a `tick` event, or the answer to GET /api/v1/health)."""

    def __init__(self, snapshot: HealthSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class AlertChanged(Message):
    def __init__(self, change: AlertChange) -> None:
        super().__init__()
        self.change = change


class SourceStateChanged(Message):
    def __init__(self, status: SourceStatus) -> None:
        super().__init__()
        self.status = status


class JobProgressed(Message):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress


class JobDone(Message):
    def __init__(self, finished: JobFinished) -> None:
        super().__init__()
        self.finished = finished


class ConnectionChanged(Message):
    def __init__(self, state: ConnectionState, detail: str = "", retry_in_s: float | None = None) -> None:
        super().__init__()
        self.state: ConnectionState = state
        self.detail = detail
        self.retry_in_s = retry_in_s


class EventsLagged(Message):
    """The agent dropped events for us because we read too slowly."""

    def __init__(self, missed: int) -> None:
        super().__init__()
        self.missed = missed


class PayloadProblem(Message):
    """The agent sent something we could not read; it was skipped."""

    def __init__(self, event: str, detail: str) -> None:
        super().__init__()
        self.event = event
        self.detail = detail

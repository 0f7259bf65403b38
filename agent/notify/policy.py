"""What goes to one webhook and when: filtering, grouping and rate limiting, as a pure state machine.

Sans-I/O like the protocol code: `offer` alert changes with the monotonic time, ask `due_at` when the next
message may leave, and `take` it. A flapping link raises and clears the same alert again and again; that
must reach a channel as one line that says so ("raised 4 times in the last 38 s"), not as a flood. So the
changes of one alert within a group window fold into one entry, and a webhook gets at most
`max_per_minute` messages: whatever waits past that folds into the next one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from agent.models import Alert, AlertChange

NotifiedKind = Literal["raised", "escalated", "cleared"]
RATE_WINDOW_S = 60.0
_RANK = {"warning": 1, "critical": 2}


@dataclass
class NotifiedChange:
    """One alert's line in a message: its latest state and how many changes were folded into it."""

    kind: NotifiedKind
    alert: Alert
    changes_folded: int = 1
    first_change_at_s: float = 0.0
    last_change_at_s: float = 0.0

    @property
    def flapping(self) -> bool:
        return self.changes_folded > 2

    @property
    def span_s(self) -> float:
        return self.last_change_at_s - self.first_change_at_s


@dataclass
class Notification:
    """One message to one webhook, most severe lines first."""

    changes: list[NotifiedChange]

    @property
    def changes_folded_total(self) -> int:
        return sum(line.changes_folded for line in self.changes)


@dataclass
class WebhookPolicy:
    min_severity: str = "warning"
    kinds: frozenset[str] = frozenset()
    send_cleared: bool = True
    group_s: float = 5.0
    max_per_minute: int = 6
    _pending: dict[str, NotifiedChange] = field(default_factory=dict)
    _flush_at_s: float | None = None
    _sent_at_s: deque[float] = field(default_factory=deque)
    # Alerts whose raise went out (id -> severity sent), so a clear is only sent for what was announced.
    _announced: dict[str, str] = field(default_factory=dict)

    def offer(self, change: AlertChange, now_s: float) -> bool:
        """Take one alert change; True if it will be part of a message."""
        alert = change.alert
        if self.kinds and alert.kind not in self.kinds:
            return False
        kind = self._kind_of(change)
        if kind is None:
            return False
        pending = self._pending.get(alert.id)
        if pending is None:
            self._pending[alert.id] = NotifiedChange(kind, alert, 1, now_s, now_s)
        else:
            pending.kind = self._fold(pending.kind, kind)
            pending.alert = alert
            pending.changes_folded += 1
            pending.last_change_at_s = now_s
        if self._flush_at_s is None:
            self._flush_at_s = now_s + self.group_s
        return True

    def _kind_of(self, change: AlertChange) -> NotifiedKind | None:
        alert = change.alert
        announced = self._announced.get(alert.id)
        pending = self._pending.get(alert.id)
        meets_minimum = _RANK[alert.severity] >= _RANK[self.min_severity]
        if change.change == "cleared":
            # A clear matters only if its raise was (or is about to be) sent.
            if announced is None and pending is None:
                return None
            return "cleared" if self.send_cleared or pending is not None else None
        if not meets_minimum:
            return None
        if change.change == "raised":
            return "raised"
        # An update is news only when it got worse than what the channel was told.
        told = announced if pending is None else pending.alert.severity
        if told is None:
            return "raised"  # below the minimum until now: to this channel it is new
        return "escalated" if _RANK[alert.severity] > _RANK[told] else None

    @staticmethod
    def _fold(before: NotifiedKind, after: NotifiedKind) -> NotifiedKind:
        if after == "cleared":
            return "cleared"
        if before == "cleared":
            return "raised"  # cleared, then back: it is a new raise to the reader
        return "raised" if "raised" in (before, after) else "escalated"

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def due_at(self) -> float | None:
        """The monotonic time the next message may leave, or None when nothing waits."""
        if self._flush_at_s is None:
            return None
        self._forget_old_sends(self._flush_at_s)
        if len(self._sent_at_s) < self.max_per_minute:
            return self._flush_at_s
        return max(self._flush_at_s, self._sent_at_s[0] + RATE_WINDOW_S)

    def take(self, now_s: float) -> Notification | None:
        """The message that is due now, if any; what it carries is no longer pending."""
        due = self.due_at()
        if due is None or now_s < due:
            return None
        lines = [line for line in map(self._finish, self._pending.values()) if line is not None]
        self._pending.clear()
        self._flush_at_s = None
        if not lines:
            return None
        self._sent_at_s.append(now_s)
        lines.sort(key=lambda line: (line.kind == "cleared", -_RANK[line.alert.severity], line.alert.since))
        return Notification(lines)

    def _finish(self, line: NotifiedChange) -> NotifiedChange | None:
        alert_id = line.alert.id
        if line.kind == "cleared":
            was_announced = self._announced.pop(alert_id, None) is not None
            # Raised and cleared within one window: still worth a line when it flapped or was announced.
            if not (self.send_cleared or line.changes_folded > 1):
                return None
            return line if was_announced or line.changes_folded > 1 else None
        self._announced[alert_id] = line.alert.severity
        return line

    def _forget_old_sends(self, now_s: float) -> None:
        while self._sent_at_s and now_s - self._sent_at_s[0] >= RATE_WINDOW_S:
            self._sent_at_s.popleft()

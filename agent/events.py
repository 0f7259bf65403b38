"""The event bus the runtime publishes to, and its fan-out to any number of Server-Sent Events clients.

Lives beside the runtime, not in api/: the core publishes here and never imports the API (the API's
SSE endpoint subscribes).

Each event is serialised once, whatever the number of clients. Every client has its own bounded
queue: a slow client loses its oldest events (and is told how many) instead of stalling the agent
or the other clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

DEFAULT_QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    data: str  # JSON, already redacted


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(DEFAULT_QUEUE_SIZE))
    dropped: int = 0

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


_CLOSING = Event("closing", "{}")


class EventBus:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish(self, event_type: str, data_json: str) -> None:
        """Called from the agent's event loop; never blocks, never awaits."""
        event = Event(event_type, data_json)
        for subscription in self._subscriptions:
            subscription.offer(event)

    def close(self) -> None:
        """End every client's stream (the agent is stopping), so the HTTP server can shut down."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription.offer(_CLOSING)

    def subscribe(self) -> Subscription:
        subscription = Subscription(asyncio.Queue(self.queue_size))
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def stream(self, subscription: Subscription) -> AsyncIterator[Event]:
        """Events for one client until it goes away; a `lagged` event reports what it missed."""
        reported_dropped = 0
        try:
            while not self.closed or not subscription.queue.empty():
                event = await subscription.queue.get()
                if event is _CLOSING:
                    return
                if subscription.dropped > reported_dropped:
                    missed = subscription.dropped - reported_dropped
                    reported_dropped = subscription.dropped
                    yield Event("lagged", f'{{"missed_events": {missed}}}')
                yield event
        finally:
            self.unsubscribe(subscription)

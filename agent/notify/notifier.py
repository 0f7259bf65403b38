"""The notifier: a sink of the agent's records that posts alert changes to webhooks, with retries.

Each webhook has its own policy (what, when) and its own delivery task, so a dead Discord never delays
Slack. Delivery is at least once, in order, with a capped and jittered backoff on timeouts, 5xx and 429
(honouring Retry-After); other 4xx answers mean the URL or the body is wrong, so they are not retried
blindly. A message that cannot be delivered is logged and counted, never silently lost. Webhook URLs are
secrets (Slack's and Discord's carry the credential in the path): only their host is ever shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from agent.backoff import Backoff, parse_retry_after
from agent.models import LOG_RECORD, AlertRecord
from agent.notify.formats import render
from agent.notify.policy import Notification, WebhookPolicy
from agent.notify.settings import NotifySettings, WebhookSettings
from agent.redact import MARK, register_secret

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
CLOSE_FLUSH_S = 3.0
_ALERT_TYPE = '"type":"alert"'
_ALERT_TYPE_WITHIN = 64  # the type comes first in a record, after at most the shipper's `seq`


def shown_webhook(url: str) -> str:
    """A webhook URL as it may appear in a log or the UI: scheme and host, the rest redacted."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/{MARK}"


@dataclass
class WebhookStats:
    sent: int = 0
    given_up: int = 0
    last_error: str | None = None


@dataclass
class _Webhook:
    settings: WebhookSettings
    policy: WebhookPolicy
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stats: WebhookStats = field(default_factory=WebhookStats)
    # Of the message being delivered: the backoff grows with its failed tries, and restarts with the next.
    backoff: Backoff = field(
        default_factory=lambda: Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S, retry_after_max_s=BACKOFF_MAX_S)
    )

    @property
    def url(self) -> str:
        return self.settings.url.get_secret_value()

    @property
    def shown(self) -> str:
        return shown_webhook(self.url)


class Notifier:
    """`write_line` (the RecordSink side) is synchronous and cheap; `run` does the network work."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.settings = settings
        self.agent_name = settings.agent_name or platform.node() or "streamhealth"
        self._clock = clock
        self._transport = transport
        self.webhooks = [
            _Webhook(
                hook,
                WebhookPolicy(
                    min_severity=hook.min_severity,
                    kinds=frozenset(hook.kinds),
                    send_cleared=hook.send_cleared,
                    group_s=settings.group_s,
                    max_per_minute=settings.max_per_minute,
                ),
            )
            for hook in settings.webhooks
        ]
        for hook in self.webhooks:
            register_secret(hook.url)
            register_secret(urlsplit(hook.url).path)  # httpx logs URLs at debug level; its path is the credential

    # --- RecordSink -------------------------------------------------------------------------------

    def write_line(self, line_json: str) -> None:
        if _ALERT_TYPE not in line_json[:_ALERT_TYPE_WITHIN]:
            return  # ticks are most lines: skip them without parsing
        record = LOG_RECORD.validate_json(line_json)
        if not isinstance(record, AlertRecord):
            return
        now = self._clock()
        for hook in self.webhooks:
            if hook.policy.offer(record.change, now):
                hook.wake.set()

    # --- delivery ---------------------------------------------------------------------------------

    async def run(self) -> None:
        async with self._client() as client:
            await asyncio.gather(*(self._deliver_forever(client, hook) for hook in self.webhooks))

    async def close(self) -> None:
        """Send what waits (a stop's last clears) once each, ignoring the group window; bounded in time."""
        if not any(hook.policy.waiting for hook in self.webhooks):
            return
        try:
            async with asyncio.timeout(CLOSE_FLUSH_S), self._client() as client:
                for hook in self.webhooks:
                    due = hook.policy.due_at()
                    notification = hook.policy.take(due) if due is not None else None
                    if notification is not None:
                        await self._post_once(client, hook, notification)
        except TimeoutError:
            log.warning("notifications still waiting at shutdown were not sent within %g s", CLOSE_FLUSH_S)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            transport=self._transport,
            headers={"User-Agent": "streamhealth-notifier"},
            follow_redirects=False,
        )

    async def _deliver_forever(self, client: httpx.AsyncClient, hook: _Webhook) -> None:
        while True:
            due = hook.policy.due_at()
            if due is None:
                hook.wake.clear()
                await hook.wake.wait()
                continue
            delay = due - self._clock()
            if delay > 0:
                hook.wake.clear()
                # Woken early by a new change only to recompute; the due time never moves earlier.
                try:
                    async with asyncio.timeout(delay):
                        await hook.wake.wait()
                except TimeoutError:
                    pass
                continue
            notification = hook.policy.take(self._clock())
            if notification is not None:
                await self._deliver(client, hook, notification)

    async def _deliver(self, client: httpx.AsyncClient, hook: _Webhook, notification: Notification) -> None:
        body = render(hook.settings.format, notification, self.agent_name)
        hook.backoff.reset()
        for attempt in range(1, self.settings.max_attempts + 1):
            retry_after = await self._post(client, hook, body)
            if retry_after is None:
                return
            if attempt == self.settings.max_attempts:
                break
            await asyncio.sleep(retry_after)
        hook.stats.given_up += 1
        log.error(
            "gave up on a notification to %s after %d tries (%s); the alerts are still on the agent's Alerts screen",
            hook.shown,
            self.settings.max_attempts,
            hook.stats.last_error,
        )

    async def _post_once(self, client: httpx.AsyncClient, hook: _Webhook, notification: Notification) -> None:
        await self._post(client, hook, render(hook.settings.format, notification, self.agent_name))

    async def _post(self, client: httpx.AsyncClient, hook: _Webhook, body: dict[str, Any]) -> float | None:
        """One try. None: done (delivered, or refused for good); otherwise seconds to wait before the next."""
        try:
            response = await client.post(
                hook.url, content=json.dumps(body), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            hook.stats.last_error = f"{type(exc).__name__}"
            log.warning("notification to %s failed (%s); retrying", hook.shown, hook.stats.last_error)
            return hook.backoff.next_s()
        status = response.status_code
        if 200 <= status < 300:
            hook.stats.sent += 1
            hook.stats.last_error = None
            return None
        hook.stats.last_error = f"HTTP {status}"
        if status == 429 or status >= 500:
            log.warning("notification to %s answered %d; retrying", hook.shown, status)
            return hook.backoff.next_s(_retry_after_s(response))
        log.error(
            "notification to %s refused with HTTP %d: check the webhook URL in [notify] (it may have been revoked)",
            hook.shown,
            status,
        )
        hook.stats.given_up += 1
        return None


def _retry_after_s(response: httpx.Response) -> float | None:
    """The wait a 429 or 5xx asks for: its Retry-After header, else (Discord) `retry_after` in its JSON body."""
    header = response.headers.get("Retry-After")
    if header is not None:
        return parse_retry_after(header)
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("retry_after") if isinstance(body, dict) else None
    try:
        return None if value is None else max(0.0, float(value))
    except (TypeError, ValueError):
        return None

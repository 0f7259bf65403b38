"""Fleet notifications: the collector tells webhooks when an agent loses contact, and about agents' critical alerts.

The fleet's changes are turned into the agent's own alert changes and handed to the agent's notifier
(agent/notify/), so grouping, rate limits, retries, formats and redaction of webhook URLs are the same
as on an agent. Each alert is named for its agent (`studio-pc: ...`, id `<agent id>:<alert id>`).
Run it on one collector only (`collector serve --notify FILE`): every collector would send the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from pydantic import ValidationError

from agent.errors import ConfigError
from agent.models import Alert, AlertChange, AlertRecord, utc_now
from agent.notify.notifier import Notifier
from agent.notify.settings import NotifySettings
from collector.fleet import FleetTracker
from collector.models import FleetView
from collector.store import StoreError

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.0
SENDER_NAME = "streamhealth collector"


def load_notify_settings(path: Path) -> NotifySettings:
    """The `[notify]` section of a TOML file, as an agent's config writes it; a bad file is a ConfigError."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the notify settings: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    section = document.get("notify")
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: no [notify] section (see docs/notifications.md)")
    try:
        return NotifySettings.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: notify.{where}: {first['msg']}") from None


class FleetNotifier:
    """Watches the fleet; every change of a fleet alert becomes an alert change for the notifier."""

    def __init__(
        self, tracker: FleetTracker, settings: NotifySettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.tracker = tracker
        named = settings if settings.agent_name else settings.model_copy(update={"agent_name": SENDER_NAME})
        self.notifier = Notifier(named, transport=transport)
        self.active: dict[str, Alert] = {}

    def observe(self, view: FleetView) -> list[AlertChange]:
        """Compare the fleet's alerts with the last look; hand each raise and clear to the notifier."""
        current = {alert.id: alert for alert in view.alerts}
        for row in view.agents:
            if row.stream_state == "lost_contact":
                # Nothing is known of its alerts while it is silent: they stay as they were (no false clear).
                prefix = f"{row.agent_id}:"
                current.update({key: alert for key, alert in self.active.items() if key.startswith(prefix)})
                continue
            snapshot = self.tracker.latest(row.agent_id)
            for alert in snapshot.alerts if snapshot is not None else []:
                if alert.severity == "critical":
                    fleet_id = f"{row.agent_id}:{alert.id}"
                    current[fleet_id] = alert.model_copy(
                        update={"id": fleet_id, "message": f"{row.name}: {alert.message}"}
                    )
        changes: list[AlertChange] = []
        for alert_id, alert in current.items():
            before = self.active.get(alert_id)
            if before is None:
                changes.append(AlertChange(change="raised", alert=alert))
            elif before.severity != alert.severity:
                changes.append(AlertChange(change="updated", alert=alert))
        now = utc_now()
        for alert_id in self.active.keys() - current.keys():
            gone = self.active[alert_id]
            changes.append(AlertChange(change="cleared", alert=gone.model_copy(update={"cleared_at": now})))
        self.active = current
        for change in changes:
            self.notifier.write_line(AlertRecord(at=now, change=change).model_dump_json())
        return changes

    async def run(self, every_s: float = WATCH_EVERY_S) -> None:
        """Look at the fleet every `every_s` and deliver, until cancelled; a store hiccup only skips a look."""
        delivery = asyncio.create_task(self.notifier.run(), name="fleet-notify-delivery")
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.tracker.refresh()
                    self.observe(self.tracker.view())
                except StoreError as exc:
                    log.warning("fleet notifications: could not look at the fleet: %s", exc)
                await asyncio.sleep(max(0.0, every_s - (time.monotonic() - started)))
        finally:
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery
            await self.notifier.close()


@contextlib.asynccontextmanager
async def watching(notifier: FleetNotifier | None, every_s: float = WATCH_EVERY_S) -> AsyncIterator[None]:
    """For the app's lifespan: the watch runs while the collector serves."""
    if notifier is None:
        yield
        return
    task = asyncio.create_task(notifier.run(every_s), name="fleet-notify")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

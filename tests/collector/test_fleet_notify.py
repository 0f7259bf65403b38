"""Fleet notifications from a real collector to a real HTTP receiver: agents' critical alerts, lost contact
raised and cleared, and the webhook URL never shown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from agent.errors import ConfigError
from agent.notify.settings import NotifySettings, WebhookSettings
from agent.redact import RedactingFilter
from collector.app import create_app
from collector.notify import load_notify_settings
from collector.store import open_store
from tests.collector.fleet_data import recent_ticks
from tests.collector.helpers import RunningCollector, add_tokens
from tests.peers.wait import async_wait_until, free_port
from tests.peers.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.tui import data

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def notifying_collector(tmp_path: Path, hook_url: str) -> AsyncIterator[RunningCollector]:
    database = f"sqlite:///{tmp_path / 'collector.sqlite3'}"
    agent_token, reader_token = await add_tokens(database)
    notify = NotifySettings(webhooks=[WebhookSettings(url=hook_url, format="json")], group_s=0.05)  # type: ignore[arg-type]
    port = free_port()
    app = create_app(open_store(database), events_poll_s=0.05, notify=notify)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        await async_wait_until(lambda: server.started or task.done(), 20, "the collector to start")
        yield RunningCollector(f"http://127.0.0.1:{port}", agent_token, reader_token)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def lines(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(alert["change"], alert["summary"]) for hit in receiver.received for alert in hit.body["alerts"]]


async def test_the_collector_sends_critical_alerts_and_lost_contact_raised_and_cleared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactingFilter())  # as the CLI's log handler: httpx itself logs the URL
    async with webhook_receiver() as receiver, notifying_collector(tmp_path, receiver.url()) as collector:
        await collector.ship(recent_ticks(3, alerts=[data.alert()]), agent_id="a1", name="studio-pc")
        await async_wait_until(lambda: lines(receiver), 15, "the critical alert")
        change, summary = lines(receiver)[0]
        assert change == "raised" and summary.startswith("CRITICAL (raised): studio-pc: ")
        assert receiver.received[0].body["agent_name"] == "streamhealth collector"
        first_step = receiver.received[0].body["alerts"][0]["first_step"]
        assert first_step == data.alert().suggestions[0].text

        # Silence: lost contact (critical: it was live); its own alert is not cleared while nothing is known.
        await async_wait_until(
            lambda: any("stopped reporting" in summary for _, summary in lines(receiver)), 15, "lost contact"
        )
        lost = [summary for change, summary in lines(receiver) if "stopped reporting" in summary]
        assert lost[0].startswith("CRITICAL (raised): studio-pc stopped reporting")
        assert [change for change, _ in lines(receiver)].count("cleared") == 0
        # Back, without the alert: lost contact cleared, and its alert too.
        await collector.ship(recent_ticks(2, first_seq=10), agent_id="a1", name="studio-pc")
        await async_wait_until(
            lambda: any(c == "cleared" and "stopped reporting" in s for c, s in lines(receiver)), 15, "contact back"
        )
        await async_wait_until(
            lambda: any(c == "cleared" and s.startswith("cleared: studio-pc: ") for c, s in lines(receiver)),
            15,
            "the agent's alert cleared",
        )
    assert "s3cretw3bhookpath" not in caplog.text
    assert all("s3cretw3bhookpath" not in json.dumps(hit.body) for hit in receiver.received)


def test_notify_settings_come_from_a_toml_notify_section_and_a_bad_one_names_the_field(tmp_path: Path) -> None:
    good = tmp_path / "notify.toml"
    good.write_text('[notify]\nmax_per_minute = 3\n[[notify.webhooks]]\nurl = "https://hooks.example/x"\n')
    assert load_notify_settings(good).max_per_minute == 3
    bad = tmp_path / "bad.toml"
    bad.write_text('[notify]\n[[notify.webhooks]]\nurl = "ftp://nope"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: notify.webhooks.0.url: .*http"):
        load_notify_settings(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no \\[notify\\] section"):
        load_notify_settings(empty)

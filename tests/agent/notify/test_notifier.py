"""The notifier against a real HTTP receiver on loopback, and inside a real agent with the real rule engine."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.models import Alert, AlertChange, AlertRecord, utc_now
from agent.notify.notifier import Notifier
from agent.notify.settings import NotifySettings, WebhookSettings
from agent.redact import RedactingFilter
from agent.runtime import Agent
from agent.settings import load_settings
from tests.agent.helpers import make_settings, system_sample
from tests.peers.wait import async_wait_until
from tests.peers.webhook_receiver import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.integration

SECRET_PATH = "s3cretw3bhookpath"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver() as receiver:
        yield receiver


def raised(alert_id: str = "cpu_high:system") -> str:
    alert = Alert(id=alert_id, kind="cpu_high", severity="critical", message="The CPU is 97% busy", since=utc_now())
    return AlertRecord(at=utc_now(), change=AlertChange(change="raised", alert=alert)).model_dump_json()


def notifier_for(receiver: WebhookReceiver, **settings: object) -> Notifier:
    hook = WebhookSettings(url=receiver.url(), format="json")  # type: ignore[arg-type]
    return Notifier(NotifySettings(webhooks=[hook], group_s=0.05, **settings))  # type: ignore[arg-type]


async def run_until(notifier: Notifier, condition: object, what: str, timeout_s: float = 15) -> None:
    task = asyncio.create_task(notifier.run())
    try:
        await async_wait_until(condition, timeout_s, what)  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_server_errors_are_retried_with_backoff_until_delivered(receiver: WebhookReceiver) -> None:
    receiver.answer_next(500)
    receiver.answer_next(503)
    notifier = notifier_for(receiver)
    notifier.write_line(raised())
    # Until the notifier has read the third answer: the receiver records a request before it answers.
    await run_until(
        notifier, lambda: len(receiver.received) == 3 and notifier.webhooks[0].stats.sent == 1, "the third try"
    )
    assert receiver.received[0].body == receiver.received[2].body  # the same message, resent
    assert receiver.received[2].body["alerts"][0]["summary"] == "CRITICAL (raised): The CPU is 97% busy"
    gaps = [later.at_s - earlier.at_s for earlier, later in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95  # jittered 1 s, then 2 s, never hammering
    assert notifier.webhooks[0].stats.sent == 1


async def test_429_waits_as_long_as_retry_after_says(receiver: WebhookReceiver) -> None:
    receiver.answer_next(429, {"Retry-After": "2"})
    notifier = notifier_for(receiver)
    notifier.write_line(raised())
    await run_until(notifier, lambda: len(receiver.received) == 2, "the retry")
    assert receiver.received[1].at_s - receiver.received[0].at_s >= 1.9


async def test_a_refused_webhook_is_not_retried_and_the_log_shows_only_its_host(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer_next(404, body=b"no_service")
    caplog.handler.addFilter(RedactingFilter())  # as the CLI's log handler: httpx itself logs the URL
    notifier = notifier_for(receiver)
    notifier.write_line(raised())
    with caplog.at_level(logging.INFO):
        await run_until(notifier, lambda: notifier.webhooks[0].stats.given_up == 1, "the refusal")
        await asyncio.sleep(1.5)  # a retry would come after about 1 s
    assert len(receiver.received) == 1
    assert "refused with HTTP 404" in caplog.text and "http://127.0.0.1/<redacted>" in caplog.text
    assert SECRET_PATH not in caplog.text


async def test_an_unreachable_webhook_is_retried_then_given_up_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    hook = WebhookSettings(url=f"http://127.0.0.1:9/hook/{SECRET_PATH}")  # type: ignore[arg-type]
    notifier = Notifier(NotifySettings(webhooks=[hook], group_s=0, max_attempts=2))
    notifier.write_line(raised())
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.DEBUG):
        await run_until(notifier, lambda: notifier.webhooks[0].stats.given_up == 1, "giving up")
    assert "gave up on a notification to http://127.0.0.1/<redacted> after 2 tries (ConnectError)" in caplog.text
    assert SECRET_PATH not in caplog.text


async def test_a_real_agent_sends_raised_and_cleared_to_slack_with_the_backup_plan(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    webhooks = json.dumps([{"url": receiver.url(), "format": "slack"}])
    overrides = json.dumps({"cpu_high": {"for_s": 0, "clear_for_s": 0}})
    settings = make_settings(
        tmp_path,
        NOTIFY__WEBHOOKS=webhooks,
        NOTIFY__GROUP_S="0.1",
        NOTIFY__AGENT_NAME="studio-pc",
        RULES__OVERRIDES=overrides,
    )
    agent = Agent(settings, [])
    await agent.start()
    try:
        agent.publish("system", system_sample(cpu=0.99))
        agent.tick()
        await async_wait_until(lambda: len(receiver.received) == 1, 10, "the raised message")
        agent.publish("system", system_sample(cpu=0.10))
        agent.tick()
        await async_wait_until(lambda: len(receiver.received) == 2, 10, "the cleared message")
    finally:
        await agent.stop()
    raised_text, cleared_text = (item.body["text"] for item in receiver.received)
    assert raised_text.startswith("*streamhealth on studio-pc*")
    assert ":red_circle: CRITICAL (raised): The CPU is 99% busy" in raised_text
    assert "→ " in raised_text  # the playbook's first step for cpu_high
    assert ":white_check_mark: cleared: The CPU is" in cleared_text
    assert agent.log_writer is not None
    assert SECRET_PATH not in agent.log_writer.path.read_text()


async def test_a_stopping_agent_sends_what_waits_instead_of_dropping_it(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    webhooks = json.dumps([{"url": receiver.url()}])
    overrides = json.dumps({"cpu_high": {"for_s": 0}})
    agent = Agent(
        make_settings(tmp_path, NOTIFY__WEBHOOKS=webhooks, NOTIFY__GROUP_S="60", RULES__OVERRIDES=overrides), []
    )
    await agent.start()
    agent.publish("system", system_sample(cpu=0.99))
    agent.tick()
    started = time.monotonic()
    await agent.stop()
    assert time.monotonic() - started < 8
    assert len(receiver.received) == 1
    assert receiver.received[0].body["alerts"][0]["alert"]["kind"] == "cpu_high"


def test_a_bad_webhook_url_is_a_config_error_that_does_not_echo_it() -> None:
    bad = json.dumps([{"url": f"ftp://hooks.example/{SECRET_PATH}"}])
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"STREAMHEALTH_NOTIFY__WEBHOOKS": bad})
    message = str(caught.value)
    assert "notify.webhooks.url" in message and "http:// or https://" in message
    assert SECRET_PATH not in message

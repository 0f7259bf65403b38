"""The encoder lost, inside the agent: a critical alert within a second with its backup plans, a webhook, the
relay's sample counting down, and the session's summary counting the time held."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from agent.models import Alert
from agent.runtime import Agent
from tests.agent.helpers import make_settings
from tests.agent.relay.helpers import until
from tests.agent.relay.test_relay_hold import ffmpeg_x264_defaults, slate_ready, start_ffmpeg, stop
from tests.agent.rtmp.mini_ingest import mini_ingest
from tests.peers.wait import free_port
from tests.peers.webhook_receiver import webhook_receiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]


def _encoder_lost(agent: Agent) -> Alert | None:
    return next((alert for alert in agent.snapshot.alerts if alert.kind == "encoder_lost"), None)


def _held_s(agent: Agent) -> float:
    summary = agent.sessions.live_summary()
    return 0.0 if summary is None else summary.held_s


async def test_a_killed_encoder_raises_a_critical_alert_within_a_second_and_the_session_counts_the_hold(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with mini_ingest() as ingest, webhook_receiver() as receiver:
        settings = make_settings(
            tmp_path,
            sources__system__enabled="false",
            sources__network__enabled="false",
            sources__obs__enabled="false",
            sources__ffmpeg__enabled="false",
            ingest__primary=f"rtmp://127.0.0.1:{ingest.port}/live/sk_live_secret",
            relay__listen=f"127.0.0.1:{port}",
            relay__hold_s="4",
            notify__webhooks=json.dumps([{"url": receiver.url(), "min_severity": "critical"}]),
            notify__group_s="0",
        )
        agent = Agent(settings)
        await agent.start()
        source = next(s for s in agent.sources if s.name == "relay")
        relay = source.relay  # type: ignore[attr-defined]
        await until(lambda: relay.listening, 10, "the relay to listen")
        process = await start_ffmpeg(ffmpeg_x264_defaults(f"rtmp://127.0.0.1:{port}/live/x", 60))
        try:
            await until(lambda: relay.ingress.video_pictures_total >= 60, 30, "2 s of video through the relay")
            await until(lambda: slate_ready(relay), 20, "the slate made")
            killed_at = time.monotonic()
            process.kill()
            await until(lambda: _encoder_lost(agent) is not None, 5, "the encoder-lost alert")
            alert_after_s = time.monotonic() - killed_at
            await until(lambda: bool(receiver.received), 5, "the webhook")
            webhook_after_s = receiver.received[0].at_s - killed_at
            alert = _encoder_lost(agent)
            sample = agent.snapshot.relay
            assert sample is not None and sample.holding and sample.hold_remaining_s is not None
            assert 2.5 < sample.hold_remaining_s <= 4
            # The hold runs out: the stream ends at the ingest, the alert clears.
            await until(lambda: ingest.closed_sessions == 1, 10, "the hold to end the stream")
            await until(lambda: _encoder_lost(agent) is None, 5, "the alert to clear")
            # The session's next tick reads the relay's last sample: the whole hold.
            await until(lambda: _held_s(agent) > 3.5, 5, "the session to count the hold")
            summary = agent.sessions.live_summary()
        finally:
            await stop(process)
            await agent.stop()
    assert alert_after_s < 1.0, f"the alert came {alert_after_s:.2f} s after the kill"
    assert webhook_after_s < 2.0
    assert alert is not None and alert.severity == "critical"
    assert "stopped sending mid-stream" in alert.message and "holding the broadcast with the slate" in alert.message
    plans = " ".join(s.text for s in alert.suggestions)
    assert "Restart OBS" in plans and "backup machine" in plans and "end the stream" in plans
    body = json.dumps(receiver.received[0].body)
    assert "stopped sending mid-stream" in body and "sk_live_secret" not in body
    assert summary is not None and 3.5 < summary.held_s < 6

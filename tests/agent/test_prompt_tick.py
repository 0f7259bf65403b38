"""A fast source's verdict is judged at once: the uplink's early warning does not wait for the 1 Hz tick."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.models import UplinkSample
from agent.runtime import Agent
from tests.agent.helpers import make_settings


def uplink(congested: bool) -> UplinkSample:
    return UplinkSample(
        state="congested" if congested else "ok",
        connection="ingest.example:1935",
        rtt_ms=180.0 if congested else 20.0,
        min_rtt_ms=20.0,
        congested=congested,
        congestion_reason="RTT 180 ms against a 20 ms baseline, 40 KiB waiting unsent" if congested else None,
        link_rate_bps=1_190_000 if congested else None,
        suggested_video_bitrate_kbps=750 if congested else None,
    )


async def test_the_uplink_warning_is_raised_and_cleared_without_waiting_for_a_tick(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path, LOGS__ENABLED="false"), sources=[])  # never started: no 1 Hz tick
    agent.publish("uplink", uplink(False))
    agent.publish("uplink", uplink(False))
    await asyncio.sleep(0)
    assert agent.snapshot.uplink is None  # nothing changed: no extra evaluation
    agent.publish("uplink", uplink(True))
    await asyncio.sleep(0)
    assert agent.ticks == 0  # an evaluation between ticks, not a tick (sessions count one per interval)
    assert agent.snapshot.uplink is not None and agent.snapshot.uplink.congested
    (alert,) = [a for a in agent.snapshot.alerts if a.id.startswith("uplink_congested")]
    assert "750 kbps" in alert.message and "1,190,000 bit/s" in alert.message
    lower = next(s for s in alert.suggestions if "bitrate" in s.text.lower())
    assert "750 kbps" in lower.text
    agent.publish("uplink", uplink(False))
    await asyncio.sleep(0)
    assert not [a for a in agent.snapshot.alerts if a.id.startswith("uplink_congested")]
    assert any(a.id.startswith("uplink_congested") for a in agent.recently_cleared_alerts())

"""The uplink sample where people and tools look: /metrics (base units) and the health log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agent.api.app import create_app
from agent.models import UplinkSample
from agent.runtime import Agent
from tests.agent.helpers import make_settings

CONGESTED = UplinkSample(
    state="congested",
    connection="10.0.0.2:1935",
    rtt_ms=193.0,
    min_rtt_ms=0.06,
    rtt_variance_ms=40.0,
    retransmits_total=23,
    unsent_bytes=23_000,
    unacked_bytes=60_000,
    delivery_rate_bps=1_190_000.0,
    acked_bps=1_150_000,
    send_congestion_window_segments=29,
    sndbuf_limited_ratio=0.4,
    rwnd_limited_ratio=0.0,
    congested=True,
    link_rate_bps=1_180_000,
    suggested_video_bitrate_kbps=750,
)


async def test_metrics_carry_the_uplink_in_base_units(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path, LOGS__ENABLED="false"), [])
    agent.publish("uplink", CONGESTED)
    agent.tick()
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        text = (await client.get("/metrics")).text
    values = {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}
    assert values["streamhealth_uplink_congested"] == 1.0
    assert values["streamhealth_uplink_rtt_seconds"] == 0.193
    assert values["streamhealth_uplink_min_rtt_seconds"] == 0.06 / 1000
    assert values["streamhealth_uplink_unsent_bytes"] == 23_000
    assert values["streamhealth_uplink_delivery_rate_bytes_per_second"] == 1_190_000 / 8
    assert values["streamhealth_uplink_acked_bytes_per_second"] == 1_150_000 / 8
    assert values["streamhealth_uplink_link_rate_bytes_per_second"] == 1_180_000 / 8
    assert values["streamhealth_uplink_suggested_video_bitrate_bytes_per_second"] == 750_000 / 8
    assert values["streamhealth_uplink_retransmits_total"] == 23
    assert "10.0.0.2" not in text
    assert "bits_per_second" not in text  # base units: promtool says "use base unit bytes"


async def test_no_uplink_series_without_a_live_connection(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path, LOGS__ENABLED="false"), [])
    agent.publish("uplink", UplinkSample(state="searching", note="no live stream connection"))
    agent.tick()
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        assert "streamhealth_uplink_" not in (await client.get("/metrics")).text


async def test_the_health_log_carries_the_uplink_sample(tmp_path: Path) -> None:
    agent = Agent(make_settings(tmp_path), [])
    await agent.start()
    try:
        agent.publish("uplink", CONGESTED)
        agent.tick()
    finally:
        await agent.stop()
    (log_file,) = (tmp_path / "logs").glob("*.jsonl")
    ticks = [json.loads(line) for line in log_file.read_text().splitlines() if '"tick"' in line[:40]]
    uplink = next(t["snapshot"]["uplink"] for t in ticks if t["snapshot"].get("uplink"))
    assert uplink["rtt_ms"] == 193.0 and uplink["unsent_bytes"] == 23_000 and uplink["congested"] is True
    assert uplink["suggested_video_bitrate_kbps"] == 750

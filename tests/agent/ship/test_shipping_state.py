"""The agent stamps seqs on its log and shows its shipping state in the snapshot, /metrics and the TUI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from prometheus_client import generate_latest

from agent.api.metrics import build_registry
from agent.models import SourceStatus
from agent.runtime import Agent
from tests.agent.helpers import make_settings
from tests.peers.wait import async_wait_until, free_port
from tui.render.tiles.sources import sources_tile
from tui.state import DashboardState


async def test_an_agent_with_an_unreachable_collector_says_so_everywhere_and_keeps_its_lines(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = make_settings(
        tmp_path,
        ship__url=f"http://127.0.0.1:{port}",
        ship__token="agent-token-secret-1",
        sampling__interval_s="0.1",
    )
    agent = Agent(settings, [])
    await agent.start()
    try:
        await async_wait_until(
            lambda: agent.snapshot.shipping is not None and agent.snapshot.shipping.state == "retrying", 10, "retrying"
        )
        shipping = agent.snapshot.shipping
        assert shipping is not None and not shipping.connected and shipping.lines_waiting > 0
        metrics = generate_latest(build_registry(lambda: agent.snapshot)).decode()
        assert "streamhealth_shipping_connected 0.0" in metrics
        assert "streamhealth_shipping_lines_waiting" in metrics
        with_a_source = agent.snapshot.model_copy(
            update={"sources": {"system": SourceStatus(name="system", state="ok")}}
        )
        tile = sources_tile(with_a_source, DashboardState())
        assert any("RETRYING" in line.plain and "waiting" in line.plain for line in tile.lines)
        assert "agent-token-secret-1" not in agent.snapshot.model_dump_json()
    finally:
        await agent.stop()
    assert agent.log_writer is not None
    seqs = [json.loads(line)["seq"] for line in agent.log_writer.path.read_text().splitlines()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every record stamped, in order


async def test_retention_at_start_keeps_an_old_log_that_was_never_shipped(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = logs / "streamhealth-20260101T000000Z-1.jsonl"
    old.write_text("".join(f'{{"seq":{seq},"type":"tick","at":"2026-01-01T00:00:00Z"}}\n' for seq in range(1, 4000)))
    os.utime(old, (1, 1))  # the oldest by far
    settings = make_settings(
        tmp_path, logs__keep_bytes="1024", ship__url=f"http://127.0.0.1:{free_port()}", ship__token="agent-token-xyz"
    )
    agent = Agent(settings, [])
    await agent.start()
    await agent.stop()
    assert old.exists()  # beyond keep_bytes, but the collector never had it
    assert agent.sequencer is not None and agent.sequencer.next_seq > 4000  # and its seqs are never reused

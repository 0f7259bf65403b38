"""The shipper against a collector double speaking the real wire contract (MockTransport, no sockets).

The real collector process is exercised in tests/collector/test_nothing_lost.py; here each answer the
collector can give (ack, lost ack, 429, 5xx, 400, 401) is produced on demand to check the shipper's reply.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agent.models.shipping import AGENT_ID_HEADER, IngestAck
from agent.ship.cursor import load_cursor
from agent.ship.settings import ShipSettings
from agent.ship.shipper import REJECTED_DIR, Shipper
from tests.agent.ship.test_spool import write_log
from tests.peers.wait import async_wait_until

LOG = "streamhealth-20261130T000000Z-1.jsonl"


class CollectorDouble:
    """Stores (agent_id, seq) once, acknowledges after storing; `script` overrides the next answers."""

    def __init__(self) -> None:
        self.stored: dict[int, bytes] = {}
        self.requests: list[list[int]] = []
        self.script: list[Callable[[], httpx.Response | None]] = []
        self.commit_then_lose_ack = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"].startswith("Bearer ")
        lines = [line for line in gzip.decompress(request.content).split(b"\n") if line]
        self.requests.append([json.loads(line)["seq"] for line in lines])
        if self.script:
            answer = self.script.pop(0)()
            if answer is not None:
                return answer
        new = 0
        for line in lines:
            seq = json.loads(line)["seq"]
            if seq not in self.stored:
                self.stored[seq] = line
                new += 1
        if self.commit_then_lose_ack and lines:
            self.commit_then_lose_ack -= 1
            raise httpx.ReadError("connection reset after the commit")
        ack = IngestAck(accepted=new, duplicates=len(lines) - new, last_seq=max(self.stored, default=None))
        assert request.headers[AGENT_ID_HEADER] == "agent-1"
        return httpx.Response(200, content=ack.model_dump_json())


def settings(**overrides: object) -> ShipSettings:
    values: dict[str, object] = {
        "url": "http://collector.test",
        "token": SecretStr("agent-token-123"),
        "batch_interval_s": 0.02,
        "max_backoff_s": 1.0,
        "batch_max_lines": 4,
    }
    values.update(overrides)
    return ShipSettings.model_validate(values)


async def run_until(shipper: Shipper, condition: Callable[[], object], what: str, timeout_s: float = 10) -> None:
    task = asyncio.create_task(shipper.run())
    try:
        await async_wait_until(condition, timeout_s, what)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def shipper_for(tmp_path: Path, collector: CollectorDouble, **overrides: object) -> Shipper:
    return Shipper(
        settings(**overrides), tmp_path, "agent-1", transport=httpx.MockTransport(collector.handle), jitter=lambda: 0.0
    )


async def test_ships_every_line_once_in_order_and_saves_the_cursor_after_the_ack(tmp_path: Path) -> None:
    write_log(tmp_path, LOG, range(1, 11))
    collector = CollectorDouble()
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: len(collector.stored) == 10, "10 lines stored")
    assert list(collector.stored) == list(range(1, 11))
    assert collector.requests[0] == []  # no cursor yet: first ask the collector what it holds
    cursor = load_cursor(tmp_path, "agent-1")
    assert cursor is not None and cursor.last_seq == 10 and cursor.position.offset == (tmp_path / LOG).stat().st_size
    state = shipper.state()
    assert state.connected and state.state == "connected" and state.lines_waiting == 0
    assert state.oldest_waiting_age_s is None  # caught up: nothing is waiting


async def test_a_lost_ack_leaves_the_cursor_and_the_resent_batch_is_recognised(tmp_path: Path) -> None:
    """Vector/Filebeat: the offset must not move before the collector committed; here the commit happened
    but its ack was lost, so the batch is resent and the collector finds duplicates, nothing twice."""
    write_log(tmp_path, LOG, range(1, 5))
    collector = CollectorDouble()
    collector.commit_then_lose_ack = 1
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: (c := load_cursor(tmp_path, "agent-1")) and c.last_seq == 4, "cursor at 4")
    batches = [seqs for seqs in collector.requests if seqs]
    assert batches[:2] == [[1, 2, 3, 4], [1, 2, 3, 4]]  # resent whole, in order
    assert list(collector.stored) == [1, 2, 3, 4]
    assert shipper.state().retries_total == 1


async def test_a_restart_resumes_at_the_cursor_instead_of_resending_files(tmp_path: Path) -> None:
    """Fluent Bit/Filebeat: a restart must not resend whole files."""
    path = write_log(tmp_path, LOG, range(1, 9))
    collector = CollectorDouble()
    await run_until(shipper_for(tmp_path, collector), lambda: len(collector.stored) == 8, "8 stored")
    collector.requests.clear()
    write_log(tmp_path, path.name, range(9, 12))
    await run_until(shipper_for(tmp_path, collector), lambda: len(collector.stored) == 11, "11 stored")
    assert [seq for seqs in collector.requests for seq in seqs] == [9, 10, 11]


async def test_a_corrupt_cursor_is_rebuilt_from_the_collector_without_loss_or_resending(tmp_path: Path) -> None:
    """A cursor torn by a crash mid-write (a disk that lied): rebuilt from the collector's last_seq."""
    path = write_log(tmp_path, LOG, range(1, 9))
    collector = CollectorDouble()
    await run_until(shipper_for(tmp_path, collector), lambda: len(collector.stored) == 8, "8 stored")
    (tmp_path / ".streamhealth-ship-cursor.json").write_bytes(b'{"agent_id":"agent-1","fi')
    write_log(tmp_path, path.name, range(9, 12))
    collector.requests.clear()
    await run_until(shipper_for(tmp_path, collector), lambda: len(collector.stored) == 11, "11 stored")
    assert [seq for seqs in collector.requests for seq in seqs] == [9, 10, 11]


async def test_429_and_5xx_are_retried_in_order_honouring_retry_after(tmp_path: Path) -> None:
    write_log(tmp_path, LOG, range(1, 7))
    collector = CollectorDouble()
    collector.script = [
        lambda: None,  # the first question (what do you hold?) answered normally
        lambda: httpx.Response(503, json={"error": "database is restarting"}),
        lambda: httpx.Response(429, headers={"Retry-After": "0.3"}, json={"error": "slow down"}),
    ]
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: len(collector.stored) == 6, "6 stored")
    assert [seqs for seqs in collector.requests if seqs][:3] == [[1, 2, 3, 4]] * 3
    assert list(collector.stored) == list(range(1, 7))
    assert shipper.state().retries_total == 2


async def test_a_rejected_batch_is_kept_aside_with_its_reason_and_shipping_goes_on(tmp_path: Path) -> None:
    write_log(tmp_path, LOG, range(1, 7))
    collector = CollectorDouble()
    collector.script = [
        lambda: None,
        lambda: httpx.Response(400, json={"error": "bad batch", "detail": "line 2: no type"}),
    ]
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: 6 in collector.stored, "the batch after the rejected one")
    aside = sorted((tmp_path / REJECTED_DIR).iterdir())
    assert [p.name for p in aside] == ["agent-1-1-4.ndjson", "agent-1-1-4.reason.txt"]
    assert [json.loads(line)["seq"] for line in aside[0].read_bytes().splitlines()] == [1, 2, 3, 4]
    assert "line 2: no type" in aside[1].read_text()
    state = shipper.state()
    assert state.batches_set_aside_total == 1 and "line 2: no type" in (state.last_rejected or "")
    assert state.state == "connected"  # the next batches went through


async def test_a_refused_token_is_not_retried_in_a_loop_and_nothing_moves(tmp_path: Path) -> None:
    write_log(tmp_path, LOG, range(1, 4))
    collector = CollectorDouble()
    collector.script = [lambda: httpx.Response(401, json={"error": "unknown token"})] * 5
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: shipper.state().state == "rejected", "rejected")
    await asyncio.sleep(0.3)
    assert len(collector.requests) == 1 and not collector.stored
    assert "ship.token" in (shipper.state().last_error or "") and "agent-token-123" not in str(shipper.state())
    assert load_cursor(tmp_path, "agent-1") is None


async def test_retention_keeps_unshipped_files_until_the_hard_cap_then_counts_the_loss(tmp_path: Path) -> None:
    old = write_log(tmp_path, "streamhealth-20261129T000000Z-1.jsonl", range(1, 5))
    newer = write_log(tmp_path, LOG, range(5, 9))
    shipper = shipper_for(tmp_path, CollectorDouble(), hard_cap_bytes=1024 * 1024)
    assert not shipper.may_delete(old, total_bytes=10_000)
    shipper._acked_seq = 4  # the collector acknowledged the first file
    assert shipper.may_delete(old, total_bytes=10_000)
    assert not shipper.may_delete(newer, total_bytes=10_000)
    assert shipper.may_delete(newer, total_bytes=2 * 1024 * 1024)
    assert shipper.state().unshipped_lines_deleted_total == 4

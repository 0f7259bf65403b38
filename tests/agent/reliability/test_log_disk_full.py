"""A full disk never tears the health log: a failed write is cut back to the last whole line, the
failure shows in the snapshot and as an alert, and a `log_gap` line counts what was lost.

Real filesystem: each test mounts its own small tmpfs (root only) and always unmounts it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.logs.writer import HealthLogWriter
from agent.models import RunStopped, utc_now

pytestmark = pytest.mark.root


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with a file, as a recording filling the disk would."""
    filler = disk / "filler.bin"
    with filler.open("wb", buffering=0) as handle:
        for chunk in (b"\0" * 4096, b"\0"):  # whole blocks, then the last bytes one at a time
            try:
                while True:
                    handle.write(chunk)
            except OSError:
                pass
    return filler


def line(n: int) -> str:
    return RunStopped(at=utc_now(), reason=f"record {n:05d} " + "x" * 300).model_dump_json()


def test_a_full_disk_leaves_only_whole_lines_and_a_gap_record_when_space_is_back(small_disk: Path) -> None:
    writer = HealthLogWriter(small_disk / "logs", started_at=utc_now(), pid=77, max_bytes=10_000_000, keep_bytes=0)
    writer.open()
    for n in range(5):
        writer.write_line(line(n))
    filler = fill(small_disk)
    for n in range(5, 40):  # each of these may be cut short by ENOSPC
        writer.write_line(line(n))
    assert writer.status().state == "failing"
    lost = writer.status().lost_records
    assert lost > 0
    assert writer.path.read_bytes().endswith(b"\n"), "a failed write left a torn line"
    filler.unlink()
    for n in range(40, 45):
        writer.write_line(line(n))
    writer.close()
    assert writer.status().state == "off"

    records = [json.loads(text) for text in writer.path.read_text().splitlines()]  # every line whole JSON
    gaps = [record for record in records if record["type"] == "log_gap"]
    assert len(gaps) == 1 and gaps[0]["lost_records"] == lost
    written = [int(record["reason"][7:12]) for record in records if record["type"] == "run_stopped"]
    assert written == sorted(written) and written[-5:] == [40, 41, 42, 43, 44]
    assert len(written) + lost == 45  # every record is either in the file or counted as lost


async def test_the_snapshot_and_an_alert_say_the_log_is_failing_and_clear_when_it_resumes(small_disk: Path) -> None:
    from agent.runtime import Agent
    from tests.agent.helpers import make_settings

    settings = make_settings(small_disk)
    agent = Agent(settings, [])
    await agent.start()
    try:
        agent.tick()
        assert agent.snapshot.logging is not None and agent.snapshot.logging.state == "ok"
        filler = fill(small_disk)
        for _ in range(20):  # the log file's last memory page may still take a few lines
            agent.tick()
            if agent.snapshot.logging is not None and agent.snapshot.logging.state == "failing":
                break
        agent.tick()
        logging_status = agent.snapshot.logging
        assert logging_status is not None and logging_status.state == "failing"
        assert "No space left" in (logging_status.error or "")
        assert [alert.id for alert in agent.active_alerts()] == ["health_log_failing"]
        from agent.api.app import create_app

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://a"
        ) as client:
            metrics = (await client.get("/metrics")).text
        assert "streamhealth_health_log_writing 0.0" in metrics
        assert 'streamhealth_alerts_active_by_kind{kind="health_log_failing",severity="critical"} 1.0' in metrics
        filler.unlink()
        agent.tick()  # this tick's line is written; its snapshot was taken before
        agent.tick()
        assert agent.snapshot.logging is not None and agent.snapshot.logging.state == "ok"
    finally:
        await agent.stop()
    assert agent.log_writer is not None
    text = agent.log_writer.path.read_text()
    records = [json.loads(item) for item in text.splitlines()]
    assert any(record["type"] == "log_gap" and record["lost_records"] >= 2 for record in records)

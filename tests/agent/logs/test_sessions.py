"""Run summaries from health logs: what the History screen and GET /api/v1/runs show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent.api.app import create_app
from agent.logs.sessions import RunIndex
from agent.models import (
    AgentInfo,
    Alert,
    AlertChange,
    AlertRecord,
    HealthSnapshot,
    RunStarted,
    RunStopped,
    TickRecord,
)
from agent.runtime import Agent
from agent.settings import load_settings

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
RUN = "streamhealth-20261125T080000Z-42"


def _info(uptime_s: float = 0) -> AgentInfo:
    return AgentInfo(version="0.1.0", pid=42, started_at=T0, uptime_s=uptime_s, platform="twitch")


def _tick(seconds: float, overall: str = "ok") -> str:
    snapshot = HealthSnapshot(
        taken_at=T0 + timedelta(seconds=seconds), agent=_info(seconds), overall=overall, sources={}
    )  # type: ignore[arg-type]
    return TickRecord(snapshot=snapshot).model_dump_json()


def _alert(seconds: float, change: str, severity: str = "critical") -> str:
    alert = Alert(
        id="ingest_loss:primary",
        kind="ingest_loss",
        severity=severity,  # type: ignore[arg-type]
        message="12% of probes to the ingest lost",
        since=T0,
        cleared_at=T0 + timedelta(seconds=seconds) if change == "cleared" else None,
    )
    return AlertRecord(
        at=T0 + timedelta(seconds=seconds), change=AlertChange(change=change, alert=alert)
    ).model_dump_json()  # type: ignore[arg-type]


def _write(path: Path, lines: list[str], *, newline_at_end: bool = True) -> None:
    path.write_text("\n".join(lines) + ("\n" if newline_at_end else ""), encoding="utf-8")


def _full_run(directory: Path) -> Path:
    path = directory / f"{RUN}.jsonl"
    _write(
        path,
        [
            RunStarted(at=T0, agent=_info()).model_dump_json(),
            _tick(1),
            _alert(2, "raised"),
            _tick(2, "critical"),
            _alert(30, "cleared"),
            _tick(30),
            RunStopped(at=T0 + timedelta(seconds=90), reason="received SIGINT").model_dump_json(),
        ],
    )
    return path


def test_run_summary_has_start_stop_duration_worst_state_and_alert_counts(tmp_path: Path) -> None:
    _full_run(tmp_path)
    [run] = RunIndex(tmp_path).runs()
    assert run.run_id == RUN
    assert run.started_at == T0
    assert run.stop_reason == "received SIGINT"
    assert run.duration_s == 90
    assert run.worst_state == "critical"
    assert (run.ticks, run.alerts_raised, run.critical_raised) == (3, 1, 1)
    assert run.platform == "twitch"


def test_run_detail_lists_the_alert_timeline_in_order(tmp_path: Path) -> None:
    _full_run(tmp_path)
    detail = RunIndex(tmp_path).run(RUN)
    assert detail is not None
    assert [(entry.change, entry.alert_id) for entry in detail.alerts] == [
        ("raised", "ingest_loss:primary"),
        ("cleared", "ingest_loss:primary"),
    ]
    assert detail.alerts[1].at == T0 + timedelta(seconds=30)


def test_run_that_ended_abruptly_lasts_until_its_last_record_and_skips_torn_and_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "streamhealth-20261125T090000Z-7.jsonl"
    torn = _tick(50)[:40]
    _write(
        path,
        [RunStarted(at=T0, agent=_info()).model_dump_json(), _tick(20), "{not json", "[1, 2]", torn],
        newline_at_end=False,
    )
    [run] = RunIndex(tmp_path).runs()
    assert run.stopped_at is None
    assert run.duration_s == 20
    assert run.ticks == 1
    assert run.unreadable_lines == 2  # the torn last line may still be being written: not counted, not read


def test_growing_log_is_read_incrementally_from_where_the_last_request_stopped(tmp_path: Path) -> None:
    path = tmp_path / f"{RUN}.jsonl"
    _write(path, [RunStarted(at=T0, agent=_info()).model_dump_json(), _tick(1)])
    index = RunIndex(tmp_path)
    assert index.runs()[0].ticks == 1
    # Scribble over the first line in place (same inode, same size): a re-read from the start would count it.
    with path.open("r+b") as handle:
        handle.write(b"#" * 10)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(_tick(2, "warning") + "\n")
    [run] = index.runs()
    assert run.ticks == 2
    assert run.worst_state == "warning"
    assert run.unreadable_lines == 0


def test_parts_of_one_run_are_one_run_and_runs_are_newest_first(tmp_path: Path) -> None:
    _full_run(tmp_path)
    _write(tmp_path / f"{RUN}.part2.jsonl", [_tick(100, "warning")])
    _write(tmp_path / "streamhealth-20261125T100000Z-9.jsonl", [_tick(1)])
    runs = RunIndex(tmp_path).runs(current_run_id="streamhealth-20261125T100000Z-9")
    assert [run.run_id for run in runs] == ["streamhealth-20261125T100000Z-9", RUN]
    assert runs[0].current and not runs[1].current
    assert runs[1].files == 2
    assert runs[1].ticks == 4


def test_deleted_log_disappears_from_the_runs(tmp_path: Path) -> None:
    path = _full_run(tmp_path)
    index = RunIndex(tmp_path)
    assert len(index.runs()) == 1
    path.unlink()
    assert index.runs() == []
    assert index.run(RUN) is None


@pytest.fixture
def api(tmp_path: Path) -> httpx.AsyncClient:
    settings = load_settings(environ={"STREAMHEALTH_LOGS__DIR": str(tmp_path)})
    app = create_app(Agent(settings, sources=[]))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent")


async def test_runs_endpoints_serve_the_list_and_one_run(api: httpx.AsyncClient, tmp_path: Path) -> None:
    _full_run(tmp_path)
    listing = await api.get("/api/v1/runs")
    assert listing.status_code == 200
    assert [run["run_id"] for run in listing.json()["runs"]] == [RUN]
    assert "alerts" not in listing.json()["runs"][0]
    detail = await api.get(f"/api/v1/runs/{RUN}")
    assert detail.status_code == 200
    assert len(detail.json()["alerts"]) == 2


@pytest.mark.parametrize("run_id", ["streamhealth-nope", "..%2F..%2Fetc%2Fpasswd", "..", f"{RUN}.jsonl"])
async def test_unknown_or_crafted_run_id_is_a_json_404(api: httpx.AsyncClient, tmp_path: Path, run_id: str) -> None:
    _full_run(tmp_path)
    response = await api.get(f"/api/v1/runs/{run_id}")
    assert response.status_code == 404
    assert response.json()["error"] == "not found"

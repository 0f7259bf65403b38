"""SVG snapshots of every screen at 80x24 and 120x40 with deterministic data (fixed clock, fed
events). Review changes with `pytest --snapshot-update` and look at the report before committing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from agent.models import RunDetail, RunSummary
from tests.tui import data
from tests.tui.fake_agent import FakeAgent
from tui.app import StreamHealthApp, build_app
from tui.client import AgentClient

SIZES = [(80, 24), (100, 30), (130, 40)]


def make_app(agent: FakeAgent | None = None) -> tuple[StreamHealthApp, AgentClient]:
    client = AgentClient("http://agent.test", transport=(agent or FakeAgent()).transport)
    app = build_app(client, clock=data.FixedClock(), follow_events=False, agent_label="agent http://127.0.0.1:8765")
    return app, client


def full_ticks(client: AgentClient) -> None:
    client.attach(client._post or (lambda _: None))
    for i in range(200):  # a few minutes of history for the sparklines, same every run
        snap = data.snapshot(
            bitrate_bps=5_200_000 + (i * 7919 % 13) * 70_000,
            cpu=0.35 + (i * 31 % 17) / 60,
            dropped_ratio=0.012 if 150 < i < 170 else 0.001,
            rtt_ms=35 + (i * 13 % 9),
            alerts=[data.alert(), data.alert("warning", alert_id="cpu", seconds_ago=300)] if i == 199 else [],
        )
        client.feed("tick", data.tick_json(snap))


Prepare = Callable[[Pilot[None]], Awaitable[None]]


def preparing(app: StreamHealthApp, client: AgentClient, steps: Callable[[Pilot[None]], Awaitable[None]]) -> Prepare:
    async def run_before(pilot: Pilot[None]) -> None:
        client.attach(app.post_message)
        client.set_state("connected")
        await steps(pilot)
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_live_screen_with_every_source(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
def test_live_screen_with_no_source_configured_but_system(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        client.feed("tick", data.tick_json(data.bare_snapshot()))

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
def test_live_screen_when_the_agent_is_unreachable(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)
        await pilot.pause()
        app.state.clock.advance(75)  # type: ignore[attr-defined]
        client.set_state("disconnected", "cannot reach the agent at http://127.0.0.1:8765: connection refused", 4.0)

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
def test_alerts_screen_with_active_acknowledged_and_cleared_alerts(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)
        client.feed(
            "alert",
            data.alert_json(
                "cleared", data.alert("warning", alert_id="ingest_rtt").model_copy(update={"cleared_at": data.NOW})
            ),
        )
        await pilot.press("2")
        await pilot.pause()
        app.acknowledge("cpu")

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
def test_preflight_screen_with_a_verdict(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)
        await pilot.press("3")
        await pilot.pause()
        client.feed("progress", data.progress_json("ingest reachability", 0.2, message="38 ms"))
        client.feed("progress", data.progress_json("upload bandwidth", 0.7, message="7.1 Mb/s"))
        client.feed("job_finished", data.job_finished_json(data.preflight_report()))

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
def test_history_screen_with_runs_and_a_timeline(snap_compare: Any, size: tuple[int, int]) -> None:
    agent = FakeAgent()
    from datetime import timedelta

    runs = []
    for index, (worst, reason, alerts) in enumerate(
        [("ok", None, 0), ("critical", "received SIGINT", 3), ("warning", "the TUI closed", 1)]
    ):
        runs.append(
            RunSummary(
                run_id=f"streamhealth-2026112{5 - index}T190000Z-{100 + index}",
                started_at=data.NOW - timedelta(days=index, hours=1),
                duration_s=3600 * (index + 1) + 125,
                current=index == 0,
                platform="twitch",
                agent_version="0.1.0",
                worst_state=worst,  # type: ignore[arg-type]
                alerts_raised=alerts,
                critical_raised=1 if worst == "critical" else 0,
                stop_reason=reason,
                ticks=3600,
            )
        )
    agent.runs = runs
    for run in runs:
        agent.run_details[run.run_id] = RunDetail(**run.model_dump(), alerts=[])
    first = runs[0]
    agent.run_details[first.run_id] = RunDetail(
        **first.model_dump(),
        alerts=[
            {
                "at": data.NOW - timedelta(minutes=30),
                "change": "raised",
                "alert_id": "loss",
                "kind": "loss",
                "severity": "critical",
                "message": "ingest lost 12% of probes over 10 s",
            },  # type: ignore[list-item]
            {
                "at": data.NOW - timedelta(minutes=28),
                "change": "cleared",
                "alert_id": "loss",
                "kind": "loss",
                "severity": "critical",
                "message": "ingest lost 12% of probes over 10 s",
            },  # type: ignore[list-item]
        ],
    )
    app, client = make_app(agent)

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)
        await pilot.press("4")
        await pilot.press("v")  # the agent runs, not the stream sessions
        for _ in range(100):
            await pilot.pause(0.02)
            if "ingest lost" in str(app.screen.query_one("#timeline").render()):
                break

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
def test_history_screen_with_stream_sessions_and_a_summary(snap_compare: Any, size: tuple[int, int]) -> None:
    agent = FakeAgent()
    agent.sessions = [
        data.session_detail(0, status="live"),
        data.session_detail(1, reason="agent_stopped_unexpectedly"),
        data.session_detail(2),
    ]
    app, client = make_app(agent)

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)
        await pilot.press("4")
        for _ in range(100):
            await pilot.pause(0.02)
            if agent.sessions[0].session_id in str(app.screen.query_one("#timeline").render()):
                break

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


def test_help_screen(snap_compare: Any) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        full_ticks(client)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(80, 24), run_before=preparing(app, client, steps))

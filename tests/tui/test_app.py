"""The TUI driven by Pilot: navigation and bindings, acknowledging alerts, starting a preflight,
live updates and the agent going away and coming back through the real client (over a fake agent's
transport), bad payloads, the bell for a new critical alert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, Select, Static

from agent.models import RunDetail, RunSummary
from tests.tui import data
from tests.tui.fake_agent import FakeAgent
from tui.app import StreamHealthApp, build_app
from tui.client import AgentClient
from tui.screens.alerts import AlertsScreen
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.live import LiveScreen
from tui.screens.preflight import PreflightScreen
from tui.widgets.metric_tile import MetricTile
from tui.widgets.status import StatusHeader, TroubleBanner


def fed_app(agent: FakeAgent | None = None, *, follow_events: bool = False) -> tuple[StreamHealthApp, AgentClient]:
    agent = agent or FakeAgent()
    client = AgentClient("http://agent.test", transport=agent.transport, backoff_first_s=0.02, backoff_max_s=0.1)
    app = build_app(client, clock=data.FixedClock(), follow_events=follow_events, agent_label="agent test")
    if not follow_events:
        client.attach(app.post_message)
    return app, client


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the UI did not get there in time")
        await asyncio.sleep(0.02)  # not pilot.pause: a busy app may never be idle


def tile_text(app: StreamHealthApp, key: str) -> str:
    tile = app.screen.query_one(f"#tile-{key}", MetricTile)
    return tile.render().plain


async def test_number_keys_switch_screens_help_opens_and_closes_and_q_quits() -> None:
    app, client = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        assert isinstance(app.screen, LiveScreen)
        for key, screen in (("2", AlertsScreen), ("3", PreflightScreen), ("4", HistoryScreen), ("1", LiveScreen)):
            await pilot.press(key)
            await until(pilot, lambda screen=screen: isinstance(app.screen, screen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))
        theme = app.theme
        await pilot.press("t")
        assert app.theme != theme
        await pilot.press("q")
        await until(pilot, lambda: app._exit)
    assert app.return_code == 0


async def test_ctrl_c_quits_cleanly() -> None:
    app, _ = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app._exit)
    assert app.return_code == 0


async def test_live_tiles_update_from_ticks_fed_through_the_client() -> None:
    app, client = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        client.feed("tick", data.tick_json(data.snapshot(cpu=0.31)))
        await until(pilot, lambda: "31%" in tile_text(app, "cpu"))
        client.feed("tick", data.tick_json(data.snapshot(cpu=0.97)))
        await until(pilot, lambda: "97%" in tile_text(app, "cpu"))
        assert "CRIT" in tile_text(app, "cpu")
        assert app.screen.query_one("#tile-cpu").has_class("level-critical")
        header = app.screen.query_one(StatusHeader).render()
        assert header is not None


async def test_bad_payload_is_shown_in_the_banner_and_the_ui_keeps_updating() -> None:
    app, client = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        client.feed("tick", '{"type": "tick", "snapshot": {"broken": true}}')
        banner = app.screen.query_one(TroubleBanner)
        await until(pilot, lambda: banner.display and "unreadable" in banner.render().plain)
        client.feed("tick", data.tick_json(data.snapshot(cpu=0.42)))
        await until(pilot, lambda: "42%" in tile_text(app, "cpu"))


async def test_agent_going_away_shows_a_banner_and_stale_data_then_recovers() -> None:
    agent = FakeAgent()
    app, client = fed_app(agent, follow_events=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: client.state == "connected")
        agent.push("tick", data.tick_json(data.snapshot(cpu=0.55)))
        await until(pilot, lambda: "55%" in tile_text(app, "cpu"))

        agent.go_down()
        banner = app.screen.query_one(TroubleBanner)
        await until(pilot, lambda: banner.display and "AGENT UNREACHABLE" in banner.render().plain)
        assert "STALE" in tile_text(app, "cpu")
        assert "55%" in tile_text(app, "cpu")  # the last value stays on screen

        agent.come_back()
        await until(pilot, lambda: client.state == "connected")
        agent.push("tick", data.tick_json(data.snapshot(cpu=0.66)))
        await until(pilot, lambda: "66%" in tile_text(app, "cpu") and "OK" in tile_text(app, "cpu"))
        await until(pilot, lambda: not banner.display)


async def test_new_critical_alert_rings_the_bell_and_shows_a_toast() -> None:
    app, client = fed_app()
    rings: list[bool] = []
    app.bell = lambda: rings.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        client.feed("alert", data.alert_json("raised", data.alert("warning", alert_id="cpu")))
        client.feed("alert", data.alert_json("raised", data.alert("critical")))
        client.feed("alert", data.alert_json("updated", data.alert("critical")))
        await until(pilot, lambda: len(app._notifications) >= 1)
        await pilot.pause()
        assert rings == [True]  # once: the warning and the update do not ring
        assert any("CRITICAL" in (note.title or "") for note in app._notifications)


async def test_acknowledging_an_alert_keeps_it_listed_and_marked() -> None:
    app, client = fed_app()
    async with app.run_test(size=(100, 40)) as pilot:
        client.set_state("connected")
        client.feed("tick", data.tick_json(data.snapshot(alerts=[data.alert(), data.alert("warning", alert_id="cpu")])))
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        options = app.screen.query_one(OptionList)
        await until(pilot, lambda: options.option_count >= 2)
        assert options.highlighted_option is not None and options.highlighted_option.id == "frames_dropped_network"
        await pilot.press("a")
        await until(pilot, lambda: "frames_dropped_network" in app.state.acknowledged)
        await pilot.press("down")
        await pilot.press("space")
        await until(pilot, lambda: "cpu" in app.state.acknowledged)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "frames_dropped_network" in ids and "cpu" in ids
        prompt = options.get_option("frames_dropped_network").prompt
        console = Console(width=100, record=True)
        console.print(prompt)
        assert "ACKNOWLEDGED" in console.export_text()


async def test_starting_a_preflight_posts_the_platform_then_shows_progress_and_the_verdict() -> None:
    agent = FakeAgent()
    app, client = fed_app(agent)
    async with app.run_test(size=(120, 40)) as pilot:
        client.set_state("connected")
        client.feed("tick", data.tick_json(data.snapshot()))
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, PreflightScreen))
        assert app.screen.query_one("#platform", Select).value == "twitch"  # the agent's platform
        app.screen.query_one("#platform", Select).value = "youtube"
        await pilot.press("r")
        await until(pilot, lambda: len(agent.preflight_bodies) == 1)
        assert agent.preflight_bodies[0]["platform"] == "youtube"
        assert agent.preflight_bodies[0]["bandwidth"] is True

        client.feed("progress", data.progress_json("ingest reachability", 0.25))
        client.feed("progress", data.progress_json("upload bandwidth", 0.6, message="7.1 Mb/s so far"))
        steps = app.screen.query_one("#preflight-steps", Static)
        await until(pilot, lambda: "7.1 Mb/s so far" in str(steps.render()))
        assert "✓ ingest reachability" in str(steps.render())

        client.feed("job_finished", data.job_finished_json(data.preflight_report("NO_GO")))
        verdict = app.screen.query_one("#verdict", Static)
        await until(pilot, lambda: "NO GO" in str(verdict.render()))
        assert "4500 kb/s" in str(app.screen.query_one("#recommended", Static).render())

        await pilot.press("r")  # rerun with the key
        await until(pilot, lambda: len(agent.preflight_bodies) == 2)


async def test_preflight_refused_by_the_agent_says_why() -> None:
    agent = FakeAgent()
    agent.preflight_status = 409
    app, client = fed_app(agent)
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, PreflightScreen))
        await pilot.press("r")
        verdict = app.screen.query_one("#verdict", Static)
        await until(pilot, lambda: "already running" in str(verdict.render()))


async def test_history_lists_stream_sessions_and_shows_the_summary_of_the_highlighted_one() -> None:
    agent = FakeAgent()
    agent.sessions = [
        data.session_detail(0, status="live"),
        data.session_detail(1, reason="agent_stopped_unexpectedly"),
    ]
    app, client = fed_app(agent)
    async with app.run_test(size=(120, 40)) as pilot:
        client.set_state("connected")
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        table = app.screen.query_one("#sessions", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        rows = [" ".join(str(cell) for cell in table.get_row_at(row)) for row in range(2)]
        assert "live now" in rows[0] and " 92 " in rows[0]
        assert "agent killed" in rows[1] and " 78 " in rows[1]
        summary = app.screen.query_one("#timeline", Static)
        await until(pilot, lambda: agent.sessions[0].session_id in str(summary.render()))
        shown = str(summary.render())
        assert (
            "target 6.2 Mb/s" in shown and "Longest outage 0:00:12" in shown and "3725 written / 3725 expected" in shown
        )
        await pilot.press("down")  # the older session: its summary follows the cursor
        await until(pilot, lambda: agent.sessions[1].session_id in str(summary.render()))
        assert "network 840 (0.4%)" in str(summary.render())


async def test_history_says_when_no_session_was_recorded_yet_and_when_one_cannot_be_loaded() -> None:
    agent = FakeAgent()
    app, client = fed_app(agent)
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        summary = app.screen.query_one("#timeline", Static)
        await until(pilot, lambda: "No stream sessions in the health logs yet" in str(summary.render()))
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        screen.load_session("20991231T000000Z")
        await until(pilot, lambda: "Could not load 20991231T000000Z" in str(summary.render()))


async def test_history_lists_runs_and_shows_the_timeline_of_the_highlighted_one() -> None:
    agent = FakeAgent()
    summary = RunSummary(
        run_id="streamhealth-20261125T190000Z-1",
        started_at=data.NOW,
        duration_s=3600,
        worst_state="critical",
        alerts_raised=1,
        critical_raised=1,
        stop_reason="received SIGINT",
    )
    agent.runs = [summary]
    agent.run_details[summary.run_id] = RunDetail(
        **summary.model_dump(),
        alerts=[
            {
                "at": data.NOW,
                "change": "raised",
                "alert_id": "x",
                "kind": "x",
                "severity": "critical",
                "message": "ingest lost 12% of probes",
            }  # type: ignore[list-item]
        ],
    )
    app, client = fed_app(agent)
    async with app.run_test(size=(80, 24)) as pilot:
        client.set_state("connected")
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("v")  # from the stream sessions to the agent runs
        timeline = app.screen.query_one("#timeline", Static)
        await until(pilot, lambda: "ingest lost 12% of probes" in str(timeline.render()))

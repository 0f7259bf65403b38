"""The Fleet screen driven by Pilot: order by trouble, filter by typing, lost-contact alerts, drilling into
one agent's Live screen through the collector's forwarding and back; the cells as pure functions; SVG
snapshots at 80x24 and 120x40. The end-to-end test (test_fleet_end_to_end.py) uses a real collector."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from collector.models import FleetView
from tests.tui import data, fleet_data
from tests.tui.fake_agent import FakeAgent
from tui.fleet_app import AgentLiveScreen, FleetApp, build_fleet_app
from tui.fleet_client import FleetClient
from tui.fleet_render import drops_cell, row_cells, visible_rows
from tui.screens.fleet import FleetScreen
from tui.widgets.fleet_table import FleetTable

SIZES = [(80, 24), (100, 30), (130, 40)]


class FakeCollector:
    """/api/v1/fleet from a view the test sets; /api/v1/agents/{id}/... answered by one fake agent."""

    def __init__(self, view: FleetView) -> None:
        self.view = view
        self.agent = FakeAgent()
        self.forwarded: list[str] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/fleet":
            return httpx.Response(200, content=self.view.model_dump_json())
        _, _, rest = path.partition("/api/v1/agents/")
        if rest:
            agent_id, _, tail = rest.partition("/")
            self.forwarded.append(agent_id)
            inner = httpx.Request(request.method, f"http://agent.test/api/v1/{tail}", headers=request.headers)
            return await self.agent.handle(inner)
        return httpx.Response(404, json={"error": "not found"})


def fleet_app(view: FleetView | None = None) -> tuple[FleetApp, FleetClient, FakeCollector]:
    collector = FakeCollector(view or fleet_data.fleet())
    client = FleetClient("http://collector.test", "reader-token", transport=httpx.MockTransport(collector.handle))
    app = build_fleet_app(
        client, clock=data.FixedClock(), collector_label="collector http://collector.test", poll=False
    )
    return app, client, collector


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the UI did not get there in time")
        await asyncio.sleep(0.02)


def table_names(app: FleetApp) -> list[str]:
    return app.screen.query_one(FleetTable).names()


def test_rows_sort_by_trouble_then_name_and_a_filter_matches_name_platform_state_or_alert() -> None:
    rows = fleet_data.fleet().agents
    names = [row.name for row in visible_rows(rows)]
    assert names == ["van-cam", "studio-b", "rehearsal", "studio-a", "tiktok-phone-rig", "spare-laptop"]
    assert [row.name for row in visible_rows(rows, "youtube")] == ["spare-laptop"]
    assert [row.name for row in visible_rows(rows, "LOST")] == ["van-cam"]
    assert [row.name for row in visible_rows(rows, "cpu_high")] == ["rehearsal"]
    assert [row.name for row in visible_rows(rows, "studio live")] == ["studio-a"]


def test_cells_say_the_state_in_words_and_name_the_main_drop_cause() -> None:
    by_name = {row.name: row for row in fleet_data.fleet().agents}
    cells = [str(cell) for cell in row_cells(by_name["studio-b"])]
    assert cells[0].strip() == "DEGRADED" and cells[2] == "3.1/6.2M LOW" and cells[3] == "215 net+"
    assert cells[4] == "182ms 6%" and cells[6] == "CRIT frames_dropped_network +1"
    assert str(row_cells(by_name["van-cam"])[0]).strip() == "LOST"
    assert str(drops_cell(by_name["spare-laptop"])) == "—"  # not live: no drops to speak of
    assert str(drops_cell(by_name["studio-a"])) == "0"


async def test_typing_filters_the_table_and_escape_clears_it() -> None:
    app, client, _ = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        client.feed(fleet_data.fleet())
        await until(lambda: len(table_names(app)) == 6)
        assert table_names(app)[:2] == ["van-cam", "studio-b"]
        await pilot.press("t", "i", "k")
        await until(lambda: table_names(app) == ["tiktok-phone-rig"])
        assert app.screen.query_one(Input).value == "tik"
        await pilot.press("escape")
        await until(lambda: len(table_names(app)) == 6)


async def test_an_agent_losing_contact_rings_once_and_coming_back_says_so() -> None:
    app, client, _ = fleet_app()
    bells: list[int] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        calm = fleet_data.fleet()
        calm = calm.model_copy(
            update={"agents": [row for row in calm.agents if row.stream_state != "lost_contact"], "alerts": []}
        )
        client.feed(calm)
        await pilot.pause()
        assert bells == [] and not app._notifications
        client.feed(fleet_data.fleet())
        client.feed(fleet_data.fleet())  # still lost: no second ring
        await until(lambda: len(app._notifications) == 1)
        assert bells == [1]
        assert "van-cam stopped reporting 14 s ago" in next(iter(app._notifications)).message
        banner = str(app.screen.query_one("#fleet-banner").render())
        assert "CRIT van-cam stopped reporting" in banner
        client.feed(calm)
        await until(lambda: any("reporting again" in n.message for n in app._notifications))
        assert bells == [1]


async def test_many_agents_losing_contact_at_once_make_one_toast() -> None:
    app, client, _ = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        client.feed(fleet_data.fleet(extra=10))
        await pilot.pause()
        app.clear_notifications()
        view = fleet_data.fleet(extra=10)
        rows = [row.model_copy(update={"stream_state": "lost_contact", "silent_s": 9.0}) for row in view.agents]
        from collector.fleet import lost_contact_alert

        client.feed(view.model_copy(update={"agents": rows, "alerts": [lost_contact_alert(row) for row in rows]}))
        await until(lambda: len(app._notifications) == 1)
        await pilot.pause()
        assert len(app._notifications) == 1
        assert next(iter(app._notifications)).message.startswith("15 agents stopped reporting: ")


async def test_enter_opens_the_agents_live_screen_through_the_collector_and_escape_returns() -> None:
    app, client, collector = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        client.feed(fleet_data.fleet())
        await until(lambda: len(table_names(app)) == 6)
        await pilot.press("s", "t", "u", "d", "i", "o", "-", "a")
        await until(lambda: table_names(app) == ["studio-a"])
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, AgentLiveScreen))
        await until(lambda: collector.agent.stream_connections == 1)
        assert collector.forwarded[0] == "id-studio-a"
        collector.agent.push("tick", data.tick_json(data.snapshot(cpu=0.77)))
        await until(lambda: app.state.snapshot is not None)
        assert app.state.snapshot is not None and app.state.snapshot.system is not None
        assert app.state.snapshot.system.cpu_usage_ratio == 0.77
        assert "studio-a via http://collector.test" in app.agent_label
        await pilot.press("escape")
        await until(lambda: isinstance(app.screen, FleetScreen))
        client.feed(fleet_data.fleet())
        await until(lambda: table_names(app) == ["studio-a"])  # the filter is still there


async def test_500_agents_fit_the_cursor_follows_its_agent_and_only_visible_lines_are_drawn() -> None:
    app, client, _ = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        client.feed(fleet_data.fleet(extra=494))
        table = app.screen.query_one(FleetTable)
        await until(lambda: len(table.names()) == 500)
        await pilot.press("down", "down", "down")
        chosen = table.selected()
        assert chosen is not None and chosen.name == table.names()[3]
        for _ in range(30):
            await pilot.press("pagedown")
        assert table.selected() is not None and table.selected().name == table.names()[-1]  # type: ignore[union-attr]
        assert table.scroll_offset.y > 400  # scrolled with the cursor
        await pilot.press("pageup", "pageup")
        before = table.selected()
        calmer = fleet_data.fleet(extra=494)
        calmer.agents[2] = calmer.agents[2].model_copy(update={"stream_state": "offline"})  # van-cam is back
        client.feed(calmer)
        await until(lambda: table.names()[0] != "van-cam")
        assert table.selected() == next(row for row in table.rows if before and row.agent_id == before.agent_id)
        drawn = []
        original = table.render_line
        table.render_line = lambda y: drawn.append(y) or original(y)  # type: ignore[method-assign]
        table.refresh()
        await pilot.pause()
        assert drawn and max(drawn) < 24  # only what fits on screen, not 500 rows


@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client, _ = fleet_app()

    async def run_before(pilot: Pilot[None]) -> None:
        client.feed(fleet_data.fleet())
        await until(lambda: len(table_names(app)) == 6)
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen_filtered_with_the_collector_unreachable(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client, _ = fleet_app()

    async def run_before(pilot: Pilot[None]) -> None:
        client.feed(fleet_data.fleet())
        await until(lambda: len(table_names(app)) == 6)
        await pilot.press("s", "t", "u", "d", "i", "o")
        from tui.fleet_client import FleetUnreachable

        app.post_message(FleetUnreachable("cannot reach the collector at http://collector.test (is it running?)", 4))
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)

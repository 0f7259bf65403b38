"""The TUI shows a starting agent as STARTING, in its own colour, never as HEALTH OK."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from tests.tui import data
from tests.tui.test_app import fed_app, until
from tui.render import BADGE_STYLES
from tui.widgets.status import StatusHeader


def _left_cell(header: StatusHeader) -> Text:
    table = header.render()
    assert isinstance(table, Table)
    cell = next(iter(table.columns[0].cells))
    assert isinstance(cell, Text)
    return cell


def _style_of(text: Text, words: str) -> str:
    start = text.plain.index(words)
    return next(str(span.style) for span in text.spans if span.start <= start < span.end)


async def test_header_says_starting_in_its_own_colour_then_health_ok() -> None:
    app, client = fed_app()
    async with app.run_test(size=(100, 24)) as pilot:
        client.set_state("connected")
        starting = data.snapshot(cpu=0.2).model_copy(update={"overall": "starting"})
        client.feed("tick", data.tick_json(starting))
        header = app.screen.query_one(StatusHeader)
        await until(pilot, lambda: "STARTING" in _left_cell(header).plain)
        left = _left_cell(header)
        assert "HEALTH OK" not in left.plain
        assert _style_of(left, "STARTING") == BADGE_STYLES["starting"] != BADGE_STYLES["ok"]

        client.feed("tick", data.tick_json(data.snapshot(cpu=0.2)))
        await until(pilot, lambda: "HEALTH OK" in _left_cell(header).plain)
        assert _style_of(_left_cell(header), "HEALTH OK") == BADGE_STYLES["ok"]

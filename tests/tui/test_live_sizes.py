"""The Live screen as a technician sees it at 80x24, 100x30 and 130x40, scene by scene (tests/tui/scenes.py):
SVG snapshots, and no rendered line that ends cut with "…" (a number or a state cut in half is a wrong one)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui import data
from tests.tui.scenes import SCENES
from tests.tui.test_snapshots import make_app, preparing
from tui.app import StreamHealthApp

SIZES = [(80, 24), (100, 30), (130, 40)]


def screen_lines(app: StreamHealthApp) -> list[str]:
    """The screen as text, row by row, as the terminal would show it."""
    update = app.screen._compositor.render_full_update()
    return ["".join(segment.text for segment in strip) for strip in update.strips]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scene", list(SCENES))
def test_live_screen_scene(snap_compare: Any, scene: str, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        for _ in range(30):
            client.feed("tick", data.tick_json(SCENES[scene]()))

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


@pytest.mark.parametrize("size", SIZES)
async def test_no_line_of_the_live_screen_is_cut_with_an_ellipsis(size: tuple[int, int]) -> None:
    from tests.tui.test_snapshots import full_ticks

    scenes = {**SCENES, "every_source": None}
    for scene, build in scenes.items():
        app, client = make_app()
        async with app.run_test(size=size) as pilot:
            client.attach(app.post_message)
            client.set_state("connected")
            if build is None:
                full_ticks(client)
            else:
                client.feed("tick", data.tick_json(build()))
            await pilot.pause()
            app.clear_notifications()
            await pilot.pause()
            lines = screen_lines(app)
            assert len(lines) == size[1]
            cut = [line for line in lines if line.rstrip(" │┃╮╯╭╰").endswith("…")]
            assert not cut, f"{scene} at {size}: {cut}"
            text = "\n".join(lines)
            if scene == "held_with_slate":
                assert "HOLDING 27s" in text and "SLATE 27s LEFT" in text and "IDLE" not in text
            if scene == "cut_with_drops":
                assert "DROPPING 19/s" in text and "0.0 ms queued" not in text
            if scene == "healthy_stream":
                assert "≥ 2.50 Mb/s" in text


def test_the_newest_incident_is_shown_even_when_it_is_taller_than_the_strip() -> None:
    from datetime import timedelta

    from agent.models.incidents import Incident
    from tui.render.incidents import incident_rows

    long = Incident(
        at=data.NOW,
        kind="alert_raised",
        severity="critical",
        text="CRITICAL alert: The encoder stopped sending mid-stream; the relay is holding the broadcast with "
        "the slate for 90 s more, then ends the stream",
    )
    older = [Incident(at=data.NOW - timedelta(seconds=i + 1), kind="link_back", text="link back") for i in range(19)]
    rows = [row.plain for row in incident_rows([long, *older], 50, 5, "nothing")]
    assert rows[0].startswith("20:15:00 !! CRITICAL alert: The encoder stopped") and len(rows) == 5
    roomy = [row.plain for row in incident_rows([long, *older], 50, 8, "nothing")]
    shown_older = sum(row.endswith("link back") for row in roomy)
    assert roomy[-1] == f"+ {19 - shown_older} earlier: History (key 4)" and len(roomy) <= 8 and shown_older

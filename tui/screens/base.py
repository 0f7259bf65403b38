"""What every main screen shares: the status header, the trouble banner, the footer, and redrawing
from the app's state when it changes (only while the screen is shown; a hidden screen catches up
when it comes back).

A screen knows its app only as a `DashboardHost` (what the screens need from it), never the app class
itself: the app imports the screens, so the screens must not import the app.
"""

from __future__ import annotations

from typing import Protocol, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from tui.client import AgentClient
from tui.state import DashboardState
from tui.widgets.status import StatusHeader, TroubleBanner


class DashboardHost(Protocol):
    """What a dashboard screen uses of the app it runs in (tui/app.py's `StreamHealthApp` is one)."""

    client: AgentClient
    state: DashboardState
    agent_label: str
    revision: int  # bumped whenever `state` changed; screens watch it

    def acknowledge(self, alert_id: str) -> None: ...

    def start_preflight(self, platform: str, *, bandwidth: bool) -> None: ...


class DashboardScreen(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self._dirty = True

    @property
    def shapp(self) -> DashboardHost:
        return cast(DashboardHost, self.app)

    @property
    def state(self) -> DashboardState:
        return self.shapp.state

    def compose_header(self) -> ComposeResult:
        yield StatusHeader(self.shapp.agent_label, id="status")
        yield TroubleBanner(id="banner")

    def compose_footer(self) -> ComposeResult:
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "revision", self._on_revision, init=True)

    def _on_revision(self, _: int) -> None:
        if not self.is_current:
            self._dirty = True
            return
        self._redraw()

    def on_screen_resume(self) -> None:
        if self._dirty:
            self._redraw()

    def _redraw(self) -> None:
        self._dirty = False
        self.query_one(StatusHeader).update_state(self.state)
        self.query_one(TroubleBanner).update_state(self.state)
        self.redraw()

    def redraw(self) -> None:
        """Show the current state; screens override this."""

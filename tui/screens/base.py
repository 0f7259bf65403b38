"""What every main screen shares: the status header, the trouble banner, the footer, and redrawing
from the app's state when it changes (only while the screen is shown; a hidden screen catches up
when it comes back)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from tui.state import DashboardState
from tui.widgets.status import StatusHeader, TroubleBanner

if TYPE_CHECKING:
    from tui.app import StreamHealthApp


class DashboardScreen(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self._dirty = True

    @property
    def shapp(self) -> StreamHealthApp:
        return cast("StreamHealthApp", self.app)

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

"""The Live screen's incident strip: the last 10 minutes of what happened, newest first, in a titled box."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from agent.models.incidents import Incident
from tui.render.incidents import incident_rows

EMPTY = "nothing happened in the last 10 minutes"


class IncidentStrip(Widget):
    incidents: reactive[tuple[Incident, ...]] = reactive(())  # unchanged: not redrawn

    def on_mount(self) -> None:
        self.border_title = "Last 10 min (UTC)"

    def render(self) -> Text:
        width, height = max(1, self.content_size.width), max(1, self.content_size.height)
        return Text("\n").join(incident_rows(self.incidents, width, height, EMPTY))

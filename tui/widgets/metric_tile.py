"""A dashboard tile: a titled box whose border colour and badge both say its severity."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.render import TileView, render_tile

LEVEL_CLASSES = ("level-ok", "level-warning", "level-critical", "level-nodata", "level-stale")


class MetricTile(Widget):
    view: reactive[TileView | None] = reactive(None)  # an unchanged tile is not redrawn

    def watch_view(self, view: TileView | None) -> None:
        if view is None:
            return
        if self.border_title != view.title:  # setting it, even unchanged, costs a full screen repaint
            self.border_title = view.title
        wanted = f"level-{view.level}"
        if not self.has_class(wanted):
            self.remove_class(*LEVEL_CLASSES)
            self.add_class(wanted)

    def render(self) -> Text:
        if self.view is None:
            return Text("waiting for the agent…", style="dim italic")
        return render_tile(self.view, max(1, self.content_size.width), self.content_size.height)

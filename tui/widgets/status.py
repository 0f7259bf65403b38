"""The status header (stream state, platform, overall health, which agent) and the trouble banner."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from tui.render import OVERALL_LABELS, badge, fmt_age, stream_state
from tui.state import DashboardState


class StatusHeader(Widget):
    """One line, every screen: what a streamer needs to see from across the desk."""

    def __init__(self, agent_label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.agent_label = agent_label
        self.state: DashboardState | None = None

    def update_state(self, state: DashboardState) -> None:
        self.state = state
        self.refresh()

    def render(self) -> Table:
        state = self.state
        left = Text()
        snapshot = state.snapshot if state else None
        label, level = stream_state(snapshot)
        left.append_text(badge(level, label))
        if snapshot is not None:
            left.append(f" {snapshot.agent.platform} ", style="bold")
            overall = "stale" if state is not None and state.stale else snapshot.overall
            left.append_text(badge(overall, "DATA STALE" if overall == "stale" else OVERALL_LABELS[snapshot.overall]))
        right = Text(self.agent_label, style="dim")
        if state is not None and not state.connected:
            right = Text(state.connection.state.upper(), style="bold yellow")
        if left.cell_len + 1 + right.cell_len > self.content_size.width:
            right = Text("")  # which agent matters less than the stream's state: never cut either in half
        grid = Table.grid(expand=True)
        grid.add_column(no_wrap=True, overflow="crop")
        grid.add_column(justify="right", no_wrap=True, overflow="crop")
        grid.add_row(left, right)
        return grid


class TroubleBanner(Widget):
    """Shown only when something is wrong with the link to the agent or with what it sent."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: DashboardState | None = None
        self._shown = Text()
        self.display = False

    def update_state(self, state: DashboardState) -> None:
        self.state = state
        lines = self._lines()
        text = Text("\n").join(lines)
        bad = state.connection.state in ("disconnected", "unauthorized")
        if bad != self.has_class("bad"):
            self.set_class(bad, "bad")
        if text.plain == self._shown.plain and bool(lines) == self.display:
            return  # unchanged: no relayout
        relayout = len(lines) != len(self._shown.plain.splitlines()) if self._shown.plain else True
        self._shown = text
        self.display = bool(lines)
        self.refresh(layout=relayout)

    def _lines(self) -> list[Text]:
        state = self.state
        if state is None:
            return []
        lines = []
        connection = state.connection
        if connection.state in ("disconnected", "unauthorized"):
            text = Text("AGENT UNREACHABLE ", style="bold")
            text.append(connection.detail)
            if connection.retry_in_s is not None:
                text.append(f" · retrying every ≤{connection.retry_in_s:g}s")
            if state.snapshot is not None:
                text.append(f" · showing data from {fmt_age(state.data_age_s())} ago")
            lines.append(text)
        elif connection.state == "connecting" and state.snapshot is None:
            lines.append(Text(f"Connecting… {connection.detail}"))
        elif state.stale:
            lines.append(Text(f"No update from the agent for {fmt_age(state.data_age_s())}: values may be old"))
        problem = state.recent_problem()
        if problem is not None and connection.state == "connected":
            lines.append(Text(f"Skipped an unreadable update from the agent: {problem}", style="italic"))
        return lines

    def render(self) -> Text:
        return self._shown

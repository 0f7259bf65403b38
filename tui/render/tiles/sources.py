"""The sources tile: each source's state as a user means it (OBS closed is not OK)."""

from __future__ import annotations

from rich.text import Text

from agent.models import HealthSnapshot, SourceStatus
from tui.render.levels import Level, badge, worst
from tui.render.numbers import fmt_age
from tui.render.tile import TileView, nodata_tile
from tui.render.tiles.shipping import shipping_line
from tui.state import DashboardState

SOURCE_LEVELS: dict[str, Level] = {
    "ok": "ok",
    "starting": "nodata",
    "stale": "warning",
    "error": "critical",
    "disabled": "nodata",
}


_OBS_CONNECTION_LABELS = {
    "connecting": "CONNECTING",
    "not_connected": "NOT CONNECTED",
    "auth_failed": "AUTH FAILED",
    "kicked": "KICKED",
}


def source_view(status: SourceStatus, snapshot: HealthSnapshot | None) -> tuple[Level, str, str | None]:
    """Level, label and detail of one source as a user means it: the OBS source works fine while OBS
    itself is closed, but "OK" would say the wrong thing; a source that waits for ffmpeg is waiting."""
    obs = snapshot.obs if snapshot is not None else None
    if status.name == "obs" and status.state == "ok" and obs is not None and obs.connection != "connected":
        level: Level = "critical" if obs.connection == "auth_failed" else "warning"
        return level, _OBS_CONNECTION_LABELS.get(obs.connection, obs.connection.upper()), obs.connection_detail
    if status.state == "starting":
        return "nodata", "WAITING", "no data yet"
    label = status.state.upper()
    if status.state == "stale":
        label = f"STALE {fmt_age(status.age_s)}"
    detail = status.error if status.state in ("error", "stale") else None
    return SOURCE_LEVELS[status.state], label, detail


def source_line(status: SourceStatus, snapshot: HealthSnapshot | None = None, width: int = 40) -> Text:
    level, label, detail = source_view(status, snapshot)
    text = Text(f"{status.name:<9}", style="bold")
    text.append_text(badge(level, label))
    if detail:
        text.append(" " + detail, style="dim")
    text.truncate(width, overflow="ellipsis")
    return text


def sources_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    if snapshot is None or not snapshot.sources:
        return nodata_tile("sources", "Sources", "no sources reported", "")
    statuses = sorted(snapshot.sources.values(), key=lambda status: status.name)
    views = [source_view(status, snapshot) for status in statuses]
    level = worst(*(view[0] for view in views))
    healthy = sum(view[0] == "ok" for view in views)
    lines = [source_line(status, snapshot, width=200) for status in statuses]  # render_tile cuts to the tile
    if snapshot.shipping is not None:
        lines.append(shipping_line(snapshot.shipping))
    return TileView("sources", "Sources", level, f"{healthy}/{len(statuses)} ok", lines)

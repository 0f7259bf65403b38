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
    "not_connected": "UNREACHABLE",
    "auth_failed": "AUTH FAILED",
    "kicked": "KICKED",
}


# Sources that wait for a peer to come to them (ffmpeg posts its progress; the relay of an agent started with
# no ingest waits for `relay point-obs`): before it ever does, nobody uses them; that is not a problem to
# flag, and such a source does not count against "ok".
WAITS_FOR_PEER = frozenset({"ffmpeg", "relay"})


def in_use(status: SourceStatus) -> bool:
    return not (status.name in WAITS_FOR_PEER and status.state == "starting") and status.state != "disabled"


def source_view(status: SourceStatus, snapshot: HealthSnapshot | None) -> tuple[Level, str, str | None]:
    """Level, label and detail of one source as a user means it: the OBS source works fine while OBS
    itself is closed, but "OK" would say the wrong thing; a source that waits for ffmpeg is waiting."""
    obs = snapshot.obs if snapshot is not None else None
    if status.name == "obs" and status.state == "ok" and obs is not None and obs.connection != "connected":
        level: Level = "critical" if obs.connection == "auth_failed" else "warning"
        return level, _OBS_CONNECTION_LABELS.get(obs.connection, obs.connection.upper()), obs.connection_detail
    if not in_use(status):
        return "nodata", "NOT USED", None
    if status.state == "starting":
        return "nodata", "WAITING", "no data yet"
    label = status.state.upper()
    if status.state == "stale":
        label = f"STALE {fmt_age(status.age_s)}"
    detail = status.error if status.state in ("error", "stale") else None
    return SOURCE_LEVELS[status.state], label, detail


def source_line(status: SourceStatus, snapshot: HealthSnapshot | None = None, *, with_detail: bool = True) -> Text:
    """One source; the tile wraps a long detail under it (tui/render/tile.py), never cuts it."""
    level, label, detail = source_view(status, snapshot)
    text = Text(f"{status.name:<8} ", style="bold" if in_use(status) else "dim")
    if in_use(status):
        text.append_text(badge(level, label))
    else:
        text.append(label.lower(), style="dim")
    if detail and with_detail:
        text.append(" " + detail, style="dim")
    return text


def sources_tile(snapshot: HealthSnapshot | None, state: DashboardState) -> TileView:
    if snapshot is None or not snapshot.sources:
        return nodata_tile("sources", "Sources", "no sources reported", "")
    statuses = sorted(snapshot.sources.values(), key=lambda status: status.name)
    # Worst first, then by name: a short tile keeps its first rows, and those must be the troubled ones.
    rank = {"critical": 0, "warning": 1, "nodata": 2, "stale": 2, "ok": 3}
    used = sorted(
        (status for status in statuses if in_use(status)),
        key=lambda status: (rank[source_view(status, snapshot)[0]], status.name),
    )
    views = [source_view(status, snapshot) for status in used]
    level = worst(*(view[0] for view in views)) if views else "nodata"
    healthy = sum(view[0] == "ok" for view in views)
    # In use first: a short tile drops the last rows, and the quiet ones matter least.
    lines: list[Text] = []
    for status in [*used, *(s for s in statuses if not in_use(s))]:
        # The state on its own row, the why under it: a short tile keeps the state and drops the why.
        lines.append(source_line(status, snapshot, with_detail=False))
        detail = source_view(status, snapshot)[2]
        if detail:
            lines.append(Text(f"{'':<8}{detail}", style="dim"))
    if snapshot.shipping is not None:
        lines.append(shipping_line(snapshot.shipping))
    return TileView("sources", "Sources", level, f"{healthy}/{len(used)} ok", lines)

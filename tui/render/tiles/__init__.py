"""The Live screen's tiles, one module each, in the order they are shown.

A new tile: a module here with a `<name>_tile(snapshot, state) -> TileView` function (see cpu.py for
the smallest), then add it to `TILE_BUILDERS` below. Its colours come from tui/render/levels.py.
"""

from __future__ import annotations

from tui.render.numbers import fmt_age
from tui.render.tile import TileView
from tui.render.tiles.bitrate import bitrate_tile
from tui.render.tiles.cpu import cpu_tile
from tui.render.tiles.dropped import dropped_tile
from tui.render.tiles.headroom import headroom_tile
from tui.render.tiles.ingest import ingest_tile
from tui.render.tiles.relay import relay_tile
from tui.render.tiles.sources import sources_tile
from tui.state import DashboardState

TILE_BUILDERS = (bitrate_tile, dropped_tile, cpu_tile, ingest_tile, headroom_tile, sources_tile, relay_tile)


def live_tiles(state: DashboardState) -> list[TileView]:
    tiles = [build(state.snapshot, state) for build in TILE_BUILDERS]
    for tile in tiles:
        tile.spark = tuple(tile.spark)  # a copy: views are compared to skip redrawing unchanged tiles
    if state.stale:
        age = fmt_age(state.data_age_s())
        for tile in tiles:
            tile.level = "stale"
            tile.spark_caption = f"as of {age} ago"
    return tiles

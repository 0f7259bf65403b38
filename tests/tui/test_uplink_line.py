"""The ingest network tile's uplink lines: RTT against its baseline, unsent bytes, delivery against the stream."""

from __future__ import annotations

from agent.models import UplinkSample
from tests.tui import data
from tui.render.tiles.ingest import ingest_tile
from tui.state import DashboardState


def tile_text(uplink: UplinkSample | None) -> tuple[str, str]:
    snap = data.snapshot().model_copy(update={"uplink": uplink})
    state = DashboardState()
    view = ingest_tile(snap, state)
    return view.level, "\n".join(line.plain for line in view.lines)


def test_a_congested_uplink_shows_rtt_unsent_delivery_and_the_bitrate_that_fits() -> None:
    level, text = tile_text(
        UplinkSample(
            state="congested",
            rtt_ms=193.0,
            min_rtt_ms=0.06,
            unsent_bytes=23_000,
            delivery_rate_bps=1_190_000,
            congested=True,
            suggested_video_bitrate_kbps=750,
        )
    )
    assert level in ("warning", "critical")
    assert "RTT 193 ms" in text and "unsent  22 KiB" in text
    assert "1.19 Mb/s for" in text and "fits    750 kbps video" in text


def test_a_healthy_uplink_after_a_recovery_says_so_and_does_not_raise_the_level() -> None:
    healthy_level, _ = tile_text(None)
    level, text = tile_text(
        UplinkSample(state="ok", rtt_ms=20.0, min_rtt_ms=19.0, unsent_bytes=0, recovered_at_s_ago=3.0)
    )
    assert level == healthy_level
    assert "recovered 3 s ago" in text and "!" not in text


def test_without_a_live_connection_the_line_says_why() -> None:
    _, text = tile_text(UplinkSample(state="unavailable", note="not available on this platform (darwin)"))
    assert "not available on this platform" in text

"""The Live screen's relay tile: hidden without a relay, loud when it cannot listen, the queue and drops when live."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from agent.models import HealthSnapshot, RelayDestinationSample, RelayDrops, RelaySample, SourceStatus, TcpInfo
from tests.tui import data
from tests.tui.test_snapshots import make_app, preparing
from tui.render.tiles.relay import relay_tile
from tui.state import DashboardState


def relay_sample(*, publishing: bool = True, queue_ms: int = 120, dropped: int = 0, per_s: float = 0.0) -> RelaySample:
    drops = RelayDrops(until_keyframe=dropped)
    return RelaySample(
        taken_at=data.NOW,
        listen="127.0.0.1:1935",
        publishing=publishing,
        ingress_bps=6_150_000,
        egress_bps=5_900_000,
        video_fps=60.0,
        queue_ms=queue_ms,
        frames_dropped_total=dropped,
        frames_dropped_per_s=per_s,
        frames_dropped=drops,
        ingest_rtt_ms=38.4,
        ingest_retransmits_total=17,
        destinations=[
            RelayDestinationSample(
                name="live.twitch.tv:1935",
                state="live",
                queue_ms=queue_ms,
                frames_dropped=drops,
                tcp_info=TcpInfo(rtt_ms=38.4, rtt_variance_ms=3.1, retransmits_total=17, bytes_acked=1),
            )
        ],
    )


def with_relay(relay: RelaySample | None, state: str = "ok", error: str | None = None) -> HealthSnapshot:
    snap = data.snapshot()
    status = SourceStatus(name="relay", state=state, last_sample_at=data.NOW, age_s=0.4, error=error)  # type: ignore[arg-type]
    return snap.model_copy(update={"relay": relay, "sources": {**snap.sources, "relay": status}})


def test_relay_tile_is_hidden_when_the_agent_runs_no_relay() -> None:
    assert relay_tile(data.snapshot(), DashboardState()).hidden


def test_relay_tile_says_why_it_cannot_listen() -> None:
    error = "the relay cannot listen on 127.0.0.1:1935: Address already in use (set relay.listen to a free port)"
    view = relay_tile(with_relay(None, "error", error), DashboardState())
    assert not view.hidden and view.level == "critical" and view.headline == "NOT LISTENING"
    assert view.notes == [error]


def test_relay_tile_idle_shows_where_to_point_the_encoder() -> None:
    view = relay_tile(with_relay(relay_sample(publishing=False)), DashboardState())
    assert view.headline == "IDLE" and "rtmp://127.0.0.1:1935/live" in str(view.lines[0])


def test_relay_tile_turns_critical_while_the_relay_drops_and_says_why() -> None:
    calm = relay_tile(with_relay(relay_sample()), DashboardState())
    assert calm.level == "ok" and calm.headline == "120 ms queued"
    dropping = relay_tile(with_relay(relay_sample(queue_ms=950, dropped=48, per_s=12.0)), DashboardState())
    assert dropping.level == "critical" and dropping.headline == "DROPPING 12/s"  # never "950 ms queued" beside drops
    text = " ".join(str(line) for line in dropping.lines)
    assert "48 (inter 48)" in text and "RTT 38 ms, rtx 17" in text and "5.9" in text and "queue   950 ms" in text


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_live_screen_with_the_relay_dropping(snap_compare: Any, size: tuple[int, int]) -> None:
    app, client = make_app()

    async def steps(pilot: Pilot[None]) -> None:
        for i in range(60):
            relay = relay_sample(queue_ms=100 + 15 * i, dropped=max(0, i - 50) * 12, per_s=12.0 if i > 50 else 0.0)
            client.feed("tick", data.tick_json(with_relay(relay)))

    assert snap_compare(app, terminal_size=size, run_before=preparing(app, client, steps))


def test_relay_tile_shows_each_destination_apart_with_host_only() -> None:
    relay = relay_sample()
    slow = RelayDestinationSample(
        name="a.rtmp.youtube.com:1935",
        state="retrying",
        queue_ms=2400,
        error="connection refused",
        frames_dropped=RelayDrops(until_keyframe=31, ingest_lost=4),
    )
    relay = relay.model_copy(update={"destinations": [*relay.destinations, slow]})
    view = relay_tile(with_relay(relay), DashboardState())
    rows = [line.plain for line in view.lines]
    assert any(row.startswith("live.twitch.tv:1935 live") for row in rows)
    youtube = next(row for row in rows if row.startswith("a.rtmp.youtube.com:1935 "))
    assert "retrying" in youtube and "q 2400 ms" in youtube and "drop 35" in youtube and youtube.endswith("!!")
    assert view.level == "critical"
    assert view.notes == ["a.rtmp.youtube.com:1935: connection refused"]


def test_a_single_destination_after_a_failover_says_it_is_on_a_backup() -> None:
    relay = relay_sample()
    moved = relay.destinations[0].model_copy(update={"on_backup": True, "ingest": "backup.example:1935"})
    view = relay_tile(with_relay(relay.model_copy(update={"destinations": [moved]})), DashboardState())
    row = next(line.plain for line in view.lines if line.plain.startswith("live.twitch.tv:1935 "))
    assert "backup backup.example:1935" in row
    assert view.level == "warning"

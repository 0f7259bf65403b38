"""The uplink-cut scenario shared by the end-to-end tests and bench/uplink_cut.py.

An encoder (OBS, or ffmpeg through `streamhealth run`) streams 2500 kbit/s to nginx-rtmp in a network
namespace; after a healthy stretch the path is cut to 1.2 Mbit/s with tc tbf, later restored. The agent
runs in this process. Figures are taken from the agent's own snapshots, polled every 50 ms, and from the
encoder (OBS's outputSkippedFrames) so the test can compare the alert with the first dropped frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent.models import Alert
from agent.runtime import Agent
from tests.peers.netns import NetnsHost
from tests.peers.wait import async_wait_until

RULE = "uplink_congested"
POLL_S = 0.05


@dataclass
class CutFigures:
    alert_after_s: float | None = None
    first_drop_after_s: float | None = None  # the encoder's first dropped frame, when it tells
    suggestions_kbps: list[int] = field(default_factory=list)
    link_rate_bps: float | None = None
    cleared_after_s: float | None = None
    false_alerts_before_cut: int = 0
    found_by: str | None = None
    message: str | None = None

    def line(self) -> str:
        def s(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        return (
            f"alert {s(self.alert_after_s)}, first dropped frame {s(self.first_drop_after_s)}, "
            f"suggestions {list(dict.fromkeys(self.suggestions_kbps))} kbps, link {self.link_rate_bps or 0:,.0f} bit/s, "
            f"cleared {s(self.cleared_after_s)} after recovery, false alerts before the cut {self.false_alerts_before_cut}"
        )


def uplink_alert(agent: Agent) -> Alert | None:
    return next((alert for alert in agent.active_alerts() if alert.id == RULE), None)


async def run_cut(
    agent: Agent,
    host: NetnsHost,
    *,
    link_kbit: int = 1200,
    healthy_s: float = 6.0,
    cut_s: float = 8.0,
    dropped_frames: Callable[[], Awaitable[int | None]] | None = None,
    clear_deadline_s: float = 15.0,
) -> CutFigures:
    """Healthy stretch, cut, recovery; returns what happened when (all relative to the cut / recovery)."""
    figures = CutFigures()
    await async_wait_until(
        lambda: agent.snapshot.uplink is not None and agent.snapshot.uplink.state in ("ok", "congested"),
        20,
        "the uplink source to find the encoder's connection",
    )
    assert agent.snapshot.uplink is not None
    figures.found_by = agent.snapshot.uplink.found_by
    healthy_until = time.monotonic() + healthy_s
    while time.monotonic() < healthy_until:
        if uplink_alert(agent) is not None:
            figures.false_alerts_before_cut += 1
        await asyncio.sleep(POLL_S)
    drops_before = await dropped_frames() if dropped_frames else None
    host.shape_upload(link_kbit)
    cut_at = time.monotonic()
    while time.monotonic() - cut_at < cut_s:
        now = time.monotonic() - cut_at
        alert = uplink_alert(agent)
        if alert is not None:
            if figures.alert_after_s is None:
                figures.alert_after_s, figures.message = now, alert.message
            uplink = agent.snapshot.uplink
            if uplink is not None and uplink.suggested_video_bitrate_kbps is not None:
                figures.suggestions_kbps.append(uplink.suggested_video_bitrate_kbps)
                figures.link_rate_bps = uplink.link_rate_bps
        if dropped_frames is not None and figures.first_drop_after_s is None:
            drops = await dropped_frames()
            if drops is not None and drops_before is not None and drops > drops_before:
                figures.first_drop_after_s = time.monotonic() - cut_at
        await asyncio.sleep(POLL_S)
    host.unshape()
    restored_at = time.monotonic()
    while time.monotonic() - restored_at < clear_deadline_s:
        if uplink_alert(agent) is None:
            figures.cleared_after_s = time.monotonic() - restored_at
            break
        await asyncio.sleep(POLL_S)
    return figures

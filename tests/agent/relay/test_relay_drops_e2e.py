"""Every drop leaves a decodable stream, end to end: ffmpeg's libx264 at its defaults (3 B-frames, b-pyramid)
and a real OBS Studio with its default x264 settings (veryfast, High, 2 B-frames) publish 2500 kbit/s through
the relay to nginx-rtmp in a network namespace, whose path is cut with tc tbf to a third, then to half of the
stream's rate, 30 s each. What nginx recorded decodes with no word from `ffmpeg -v error`, and no video gap
comes near a whole GOP. The bar is 1.5 s, measured at 1.37-1.47 s (bench/relay_drops.py, the closing figures in
docs/relay.md); the suite holds 1.8 s, a margin a loaded 2-core machine never eats. In the cut to a third the
link carries only each 2 s GOP's keyframe and its first reference pictures (non-reference ones all go); that
the freezes stay under 1.5 s there depends on little of the stream sitting below the queue, where no drop
reaches it (below_queue.py: with the fixed buffers before, they were 1.57-1.70 s)."""

from __future__ import annotations

import pytest

from agent.relay.queue import DropReason
from tests.agent.relay.drop_e2e import Encoder, run_cuts
from tests.agent.relay.test_relay_congestion import ingest_in_namespace
from tests.peers import obs_studio as obs_peer
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp

__all__ = ["ingest_in_namespace"]

pytestmark = [pytest.mark.integration, pytest.mark.root]

CUTS = [(1 / 3, 30.0), (1 / 2, 30.0)]
HEALTHY_S = 5.0
MAX_GAP_S = 1.8  # in both cuts: the 1.5 s bar, measured 1.37-1.47 s, plus a margin for a loaded machine


@pytest.mark.parametrize("encoder", ["ffmpeg", "obs"])
async def test_cuts_to_a_third_and_to_half_leave_a_recording_that_decodes_without_long_gaps(
    netns_host: NetnsHost, ingest_in_namespace: NginxRtmp, encoder: Encoder
) -> None:
    if encoder == "obs":
        available, reason = obs_peer.obs_available()
        if not available:
            pytest.skip(reason)
    run = await run_cuts(netns_host, ingest_in_namespace, encoder, CUTS, healthy_s=HEALTHY_S)
    print(run.line())
    assert run.dropped[DropReason.UNTIL_KEYFRAME] > 0 and run.dropped[DropReason.DISPOSABLE] > 0, run.line()
    assert run.dropped[DropReason.QUEUE_FULL] == 0, run.line()
    assert run.decode_errors == [], run.decode_errors[:20]
    assert run.longest_gap_s <= MAX_GAP_S, run.line()
    assert run.recorded_s > 60, run.line()

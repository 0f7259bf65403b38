"""A real OBS Studio streaming to nginx-rtmp opens a session from its stream state, keeps a quick stop and
restart in the same session (one encoder reconnect), and ends it with a summary.

Needs the OBS Studio peer (tests/peers/obs_studio.py, from the issue-9 branch); skipped until it is merged.
OBS costs most of a core: one short stream, figures checked with wide margins.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.wait import async_wait_until

obs_peer = pytest.importorskip("tests.peers.obs_studio", reason="the OBS Studio test peer is not merged yet")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("obs") is None or shutil.which("Xvfb") is None, reason="needs obs-studio, xvfb"),
]

VIDEO_KBPS, AUDIO_KBPS = 1500, 160


async def test_obs_stream_state_opens_a_session_and_a_quick_restart_stays_in_it(
    nginx_ingest: NginxRtmp, tmp_path: Path
) -> None:
    ingest = f"rtmp://{nginx_ingest.host}:{nginx_ingest.port}/{nginx_ingest.app}"
    with obs_peer.obs_studio(ingest, video_kbps=VIDEO_KBPS, audio_kbps=AUDIO_KBPS) as obs:
        settings = make_settings(
            tmp_path,
            sources__obs__url=obs.websocket_url,
            sources__obs__password=obs.password,
            sessions__gap_s="4",
        )
        server = AgentServer(settings)
        await server.start()
        client = await obs_peer.connect(obs)
        try:
            sessions = server.agent.sessions
            await client.request("StartStream")
            await async_wait_until(lambda: sessions.session_id is not None, 30, "a session from OBS going live")
            first_id = sessions.session_id
            await async_wait_until(lambda: (s := sessions.live_summary()) and s.ticks_written >= 5, 30, "5 ticks")
            await client.request("StopStream")
            await async_wait_until(lambda: _obs_streaming(server) is False, 15, "OBS to stop")
            await client.request("StartStream")  # back within sessions.gap_s: the same session
            await async_wait_until(lambda: _obs_streaming(server) is True, 15, "OBS live again")
            assert sessions.session_id == first_id
            await async_wait_until(
                lambda: (s := sessions.live_summary()) and s.encoder_reconnects == 1, 15, "reconnect"
            )
            await client.request("StopStream")
            await async_wait_until(lambda: sessions.last_summary is not None, 30, "the session's end and summary")
        finally:
            await client.close()
            await server.stop()

    summary = sessions.last_summary
    assert summary is not None and summary.session_id == first_id
    assert summary.origins == ["obs"] and summary.end_reason == "stream_stopped"
    assert summary.encoder_reconnects == 1
    assert summary.ticks_written == summary.ticks_expected
    assert summary.target_bitrate_bps == (VIDEO_KBPS + AUDIO_KBPS) * 1000  # read from OBS's own settings
    assert summary.output_bitrate_mean_bps is not None
    assert 0.3 * summary.target_bitrate_bps <= summary.output_bitrate_mean_bps <= 3 * summary.target_bitrate_bps
    causes = {drop.cause: drop for drop in summary.frames_dropped}
    assert causes["network"].of_frames > 0
    assert summary.longest_outage is not None and summary.longest_outage.duration_s <= 15  # the restart
    log = next((tmp_path / "logs").glob("*.jsonl")).read_text().splitlines()
    tagged = [json.loads(line) for line in log if f'"session_id":"{first_id}"' in line]
    assert [r["type"] for r in tagged].count("tick") == summary.ticks_written
    assert [r["type"] for r in tagged][-2:] == ["session_ended", "session_summary"]


def _obs_streaming(server: AgentServer) -> bool | None:
    obs = server.agent.snapshot.obs
    return None if obs is None else obs.streaming

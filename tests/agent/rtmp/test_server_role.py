"""The core in the server role, as the local relay will use it: ffmpeg publishes to it and everything arrives."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from agent.rtmp import flv
from agent.rtmp import messages as m
from tests.agent.rtmp.mini_ingest import mini_ingest


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)")
async def test_ffmpeg_publishes_to_the_server_role_core_from_connect_to_delete_stream() -> None:
    async with mini_ingest() as ingest:
        process = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-v", "error",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-sc_threshold", "0", "-c:a", "aac",
            "-f", "flv", f"rtmp://127.0.0.1:{ingest.port}/live/relaytest",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert not ingest.errors
    names = [e.name for e in ingest.events if isinstance(e, m.Command)]
    assert names[:5] == ["connect", "releaseStream", "FCPublish", "createStream", "publish"]
    assert "deleteStream" in names
    (data,) = [e for e in ingest.events if isinstance(e, m.DataMessage)]
    assert data.metadata is not None and (data.metadata["width"], data.metadata["height"]) == (320.0, 240.0)
    video = [e for e in ingest.events if isinstance(e, m.VideoMessage)]
    audio = [e for e in ingest.events if isinstance(e, m.AudioMessage)]
    assert flv.is_avc_sequence_header(video[0].payload) and flv.is_keyframe(video[1].payload)
    assert flv.is_aac_sequence_header(audio[0].payload)
    pictures = [e for e in video if e.payload[1] == flv.AVC_NALU]
    assert len(pictures) == 30  # 2 s at 15 fps (plus the sequence header and ffmpeg's end-of-sequence)
    assert sum(flv.is_keyframe(e.payload) for e in video) == 2  # a 15-frame GOP

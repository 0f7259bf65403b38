"""Real encoder output (ffmpeg's x264 and x265 with the settings the relay meets) replayed through the drop
policy over a simulated link cut to a third and to half of the stream's rate: what the ingest would get
decodes with no word from `ffmpeg -v error`, every picture it decodes is bit for bit one the complete stream
decodes to (a decoder that conceals a missing reference says nothing but makes up a picture), and the
picture never freezes for more than 1.5 s. The same
replay with the policy as it was (a drop that let the next pictures through once the queue had emptied)
printed "co located POCs unavailable", "mmco: unref short failure" and "reference picture missing during
reorder", as the relay did with OBS. End to end through a shaped network: test_relay_drops_e2e.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.relay.frames import PICTURE_KINDS, Frame, FrameKind
from agent.relay.queue import DropReason
from tests.agent.relay import drop_replay as replay_tools

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt install ffmpeg)"),
]

SECONDS = 24
CUT_AT_S, CUT_S = 3.3, 18
MAX_GAP_MS = 1500


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[Frame]]:
    folder = tmp_path_factory.mktemp("encoded")
    cache: dict[str, list[Frame]] = {}

    def encode(encoder: str) -> list[Frame]:
        if encoder not in cache:
            if encoder in replay_tools.HEVC_ENCODERS:
                cache[encoder] = replay_tools.encode_hevc(encoder, SECONDS, folder / f"{encoder}.hevc")
            else:
                cache[encoder] = replay_tools.encode_h264(encoder, SECONDS, folder / f"{encoder}.flv")
        return cache[encoder]

    return encode


@pytest.mark.parametrize("ratio", [1 / 3, 1 / 2], ids=["third", "half"])
@pytest.mark.parametrize("encoder", ["obs-x264", "x264-defaults", "nvenc-like", "x265-defaults", "x265-closed-gop"])
def test_every_drop_leaves_a_stream_that_decodes_without_a_word_and_without_long_freezes(
    encoded: Callable[[str], list[Frame]], encoder: str, ratio: float, tmp_path: Path
) -> None:
    frames = encoded(encoder)
    result = replay_tools.replay(frames, replay_tools.cut(ratio, CUT_AT_S, CUT_S))
    dropped = result.queue.dropped
    assert dropped[DropReason.DISPOSABLE] > 0 and dropped[DropReason.UNTIL_KEYFRAME] > 0
    assert all(f in result.sent for f in frames if f.kind in (FrameKind.AUDIO, FrameKind.VIDEO_KEY))
    write, input_format = _writer(encoder)
    out, complete = tmp_path / "ingest", tmp_path / "complete"
    write(result.sent, out)
    write(frames, complete)
    assert replay_tools.decode_errors(out, input_format) == ""
    pictures = replay_tools.decoded_pictures(out, input_format)
    assert len(pictures) == sum(f.kind in PICTURE_KINDS for f in result.sent)
    assert set(pictures) <= set(replay_tools.decoded_pictures(complete, input_format))
    assert replay_tools.longest_video_gap_ms(result.sent) <= MAX_GAP_MS


def _writer(encoder: str) -> tuple[Callable[[list[Frame], Path], None], str | None]:
    if encoder in replay_tools.HEVC_ENCODERS:
        return replay_tools.write_hevc, "hevc"
    return replay_tools.write_flv, None


def test_hevc_open_gops_lose_their_rasl_pictures_when_the_stream_resumes_at_a_cra(
    encoded: Callable[[str], list[Frame]], tmp_path: Path
) -> None:
    """x265's defaults make open GOPs. The RASL pictures after a CRA reference the GOP before it: after a drop
    they would decode to made-up pictures (ffmpeg says nothing of it). The policy drops them."""
    frames = encoded("x265-defaults")
    result = replay_tools.replay(frames, replay_tools.cut(1 / 3, CUT_AT_S, CUT_S))
    sent_leading = sum(f.kind is FrameKind.VIDEO_LEADING for f in result.sent)
    assert sent_leading < sum(f.kind is FrameKind.VIDEO_LEADING for f in frames)
    replay_tools.write_hevc(frames, tmp_path / "complete")
    complete = set(replay_tools.decoded_pictures(tmp_path / "complete", "hevc"))
    # The same replay with the leading pictures put back: some pictures are not the encoder's.
    kept = {id(f) for f in result.sent}
    replay_tools.write_hevc(
        [f for f in frames if id(f) in kept or f.kind is FrameKind.VIDEO_LEADING], tmp_path / "rasl"
    )
    assert not set(replay_tools.decoded_pictures(tmp_path / "rasl", "hevc")) <= complete

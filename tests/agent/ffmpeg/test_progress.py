"""ffmpeg's -progress format: the recorded ffmpeg 5.1 output, cut anywhere, N/A values, garbage."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.ffmpeg.progress import ProgressBlock, ProgressParser, ProgressTracker, parse_block


@pytest.fixture(scope="module")
def progress_bytes(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "ffmpeg-5.1" / "progress.txt").read_bytes()


def _blocks_by_hand(text: str) -> list[dict[str, str]]:
    """An independent reading of the file: split on progress= lines."""
    blocks, current = [], {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        current[key] = value
        if key == "progress":
            blocks.append(current)
            current = {}
    return blocks


def test_recorded_progress_parses_into_every_block_with_its_values(progress_bytes: bytes) -> None:
    expected = _blocks_by_hand(progress_bytes.decode())
    blocks = ProgressParser().feed(progress_bytes)
    assert len(blocks) == len(expected) >= 5
    for block, fields in zip(blocks, expected, strict=True):
        assert block.frame == int(fields["frame"])
        assert block.fps == float(fields["fps"])
        assert block.bitrate_bps == pytest.approx(float(fields["bitrate"].removesuffix("kbits/s")) * 1000)
        assert block.total_size_bytes == int(fields["total_size"])
        assert block.out_time_s == pytest.approx(int(fields["out_time_us"]) / 1e6)
        assert block.drop_frames == int(fields["drop_frames"])
        assert block.dup_frames == int(fields["dup_frames"])
        assert block.speed_ratio == pytest.approx(float(fields["speed"].strip().removesuffix("x")))
        assert block.ended == (fields["progress"] == "end")
    assert blocks[-1].ended and not any(block.ended for block in blocks[:-1])
    assert any(fields["speed"].startswith(" ") for fields in expected)  # the padded "speed=   1x" is in there


@given(st.lists(st.integers(min_value=0, max_value=1400), max_size=30))
def test_recorded_progress_cut_at_any_boundaries_gives_the_same_blocks(progress_bytes: bytes, cuts: list[int]) -> None:
    text = progress_bytes
    whole = ProgressParser().feed(text)
    parser = ProgressParser()
    pieces: list[ProgressBlock] = []
    previous = 0
    for cut in [*sorted({min(cut, len(text)) for cut in cuts}), len(text)]:
        pieces += parser.feed(text[previous:cut])
        previous = cut
    assert pieces == whole
    assert not parser.partial


def test_not_available_values_and_crlf_lines_are_tolerated() -> None:
    blocks = ProgressParser().feed(
        b"frame=0\r\nfps=0.00\r\nbitrate=N/A\r\ntotal_size=N/A\r\nout_time_us=N/A\r\nout_time=N/A\r\n"
        b"dup_frames=0\r\ndrop_frames=0\r\nspeed=N/A\r\nprogress=continue\r\n"
    )
    assert len(blocks) == 1
    block = blocks[0]
    assert block.frame == 0 and block.bitrate_bps is None and block.total_size_bytes is None
    assert block.out_time_s is None and block.speed_ratio is None and not block.ended


def test_partial_block_waits_for_the_rest() -> None:
    parser = ProgressParser()
    assert parser.feed(b"frame=10\nfps=30.0\nspe") == []
    assert parser.partial
    [block] = parser.feed(b"ed=0.5x\nprogress=continue\n")
    assert block.frame == 10 and block.speed_ratio == 0.5


def test_out_time_falls_back_to_the_clock_form() -> None:
    assert parse_block({"out_time": "00:01:02.500000", "progress": "end"}).out_time_s == pytest.approx(62.5)


def test_input_that_is_not_progress_output_is_refused() -> None:
    with pytest.raises(ProtocolError):
        ProgressParser().feed(b"x" * 10_000)
    with pytest.raises(ProtocolError):
        ProgressParser().feed(b"".join(b"key%d=1\n" % i for i in range(1000)))
    parser = ProgressParser()
    assert parser.feed(b"just some words\nframe=1\nprogress=continue\n")[0].frame == 1
    assert parser.ignored_lines == 1


def _block(frame: int, drops: int, out_time_s: float, speed: float = 1.0, ended: bool = False) -> ProgressBlock:
    return ProgressBlock(frame, 30.0, 1e6, frame * 1000, out_time_s, 0, drops, speed, ended)


def test_tracker_reports_drops_over_the_last_window_only() -> None:
    tracker = ProgressTracker("file", window_s=10)
    for second in range(0, 11):
        sample = tracker.update(float(second), _block(30 * second, 0, float(second)))
    assert sample.frames_dropped_ratio_10s == 0.0 and sample.speed_ratio_10s == 1.0
    for second in range(11, 21):  # 3 of every 30 offered frames dropped
        sample = tracker.update(float(second), _block(30 * 10 + 27 * (second - 10), 3 * (second - 10), float(second)))
    assert sample.frames_dropped_ratio_10s == pytest.approx(0.1)
    assert sample.drop_frames_total == 30


def test_tracker_speed_over_the_last_seconds_shows_falling_behind_before_ffmpegs_average() -> None:
    tracker = ProgressTracker("http", window_s=10)
    for second in range(0, 61):
        tracker.update(float(second), _block(30 * second, 0, float(second)))
    # The uplink chokes: only half a second of media per second of wall time from now on.
    for step in range(1, 11):
        sample = tracker.update(
            60.0 + step, _block(1800 + 15 * step, 0, 60.0 + step / 2, speed=(60 + step / 2) / (60 + step))
        )
    assert sample.speed_ratio_10s == pytest.approx(0.5)
    assert sample.speed_ratio is not None and sample.speed_ratio > 0.9


def test_tracker_starts_a_new_baseline_when_ffmpeg_restarts() -> None:
    tracker = ProgressTracker("file")
    tracker.update(0.0, _block(3000, 100, 100.0))
    tracker.update(1.0, _block(3030, 100, 101.0, ended=True))
    sample = tracker.update(2.0, _block(30, 0, 1.0))
    assert tracker.runs == 2
    assert sample.frames_dropped_ratio_10s is None or sample.frames_dropped_ratio_10s >= 0

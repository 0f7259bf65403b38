"""What the relay counts from the encoder: keyframe interval, audio/video drift, stalls."""

from __future__ import annotations

from agent.relay.frames import Frame, FrameKind
from agent.relay.ingress import IngressStats
from agent.rtmp import messages as m


def video(ts: int, at: float, key: bool = False) -> Frame:
    kind = FrameKind.VIDEO_KEY if key else FrameKind.VIDEO_INTER
    return Frame(m.VIDEO, ts, bytes(100), kind, "avc", at)


def audio(ts: int, at: float) -> Frame:
    return Frame(m.AUDIO, ts, bytes(10), FrameKind.AUDIO, "aac", at)


def test_keyframe_interval_and_av_drift_come_from_the_timestamps() -> None:
    stats = IngressStats(stall_s=2.0)
    stats.stream_started("ffmpeg")
    stats.record(video(0, 0.0, key=True))
    stats.record(audio(21, 0.02))
    stats.record(video(2000, 2.0, key=True))
    stats.record(audio(2150, 2.1))
    assert stats.keyframe_interval_s == 2.0
    assert stats.av_drift_ms == 150
    assert stats.video_pictures_total == 2 and stats.bytes_total == 220
    assert (stats.video_codec, stats.audio_codec) == ("avc", "aac")


def test_a_stall_is_counted_once_while_it_lasts_and_again_after_media_came_back() -> None:
    stats = IngressStats(stall_s=2.0)
    stats.stream_started("obs")
    stats.record(video(0, 10.0, key=True))
    assert not stats.check_stall(11.0)
    assert stats.check_stall(12.5) and stats.check_stall(13.0)
    assert stats.stalls_total == 1
    stats.record(video(33, 13.5))  # media is back
    assert not stats.check_stall(13.6)
    assert stats.check_stall(16.0) and stats.stalls_total == 2


def test_no_stall_when_nobody_publishes() -> None:
    stats = IngressStats(stall_s=1.0)
    stats.stream_started("obs")
    stats.record(video(0, 0.0, key=True))
    stats.stream_ended()
    assert not stats.check_stall(100.0) and stats.stalls_total == 0

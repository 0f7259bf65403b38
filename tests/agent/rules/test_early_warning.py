"""Early warning: with the shipped rules, a degrading uplink is reported (with a bitrate that fits)
before OBS starts dropping frames. The uplink is simulated the way OBS behaves: what does not get
out waits in its send buffer; past 700 ms of buffer, OBS drops frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.models import EncoderSettings, ObsSample
from agent.rules.engine import RuleEngine
from agent.settings import load_settings
from tests.agent.rules.feed import Feed, at

VIDEO_KBPS, AUDIO_KBPS = 2500, 160
CONFIGURED_KBPS = VIDEO_KBPS + AUDIO_KBPS
DROP_BUFFER_MS = 700.0


@pytest.fixture
def engine(tmp_path: Path) -> RuleEngine:
    config = tmp_path / "config.toml"
    config.write_text('platform = "twitch"\n')
    return RuleEngine.from_settings(load_settings(config, environ={}))


def degrading_uplink(seconds: int, start_kbps: float = 4000, fall_kbps_per_s: float = 50) -> list[ObsSample]:
    samples: list[ObsSample] = []
    buffer_ms = 0.0
    drops: list[float] = []
    frames_output = frames_dropped = 0
    for t in range(seconds):
        capacity = max(300.0, start_kbps - fall_kbps_per_s * t)
        sent = min(CONFIGURED_KBPS + buffer_ms * CONFIGURED_KBPS / 1000, capacity)
        buffer_ms = max(0.0, buffer_ms + (CONFIGURED_KBPS - sent) / CONFIGURED_KBPS * 1000)
        dropped = 0.0
        if buffer_ms > DROP_BUFFER_MS:
            dropped = (buffer_ms - DROP_BUFFER_MS) / 1000  # share of a second's frames thrown away
            buffer_ms = DROP_BUFFER_MS
        drops.append(min(1.0, dropped))
        frames_output += 30
        frames_dropped += round(30 * min(1.0, dropped))
        samples.append(
            ObsSample(
                taken_at=at(t),
                connection="connected",
                streaming=True,
                output_bitrate_bps=sent * 1000,
                output_congestion_ratio=min(1.0, buffer_ms / DROP_BUFFER_MS),
                frames_dropped_network_ratio_10s=sum(drops[-10:]) / 10,
                frames_dropped_network_total=frames_dropped,
                frames_output_total=frames_output,
                stream_duration_s=60.0 + t,
                active_fps=30.0,
                configured_fps=30.0,
                settings=EncoderSettings(
                    video_bitrate_kbps=VIDEO_KBPS,
                    audio_bitrate_kbps=AUDIO_KBPS,
                    width=1280,
                    height=720,
                    fps=30,
                    keyframe_interval_s=2,
                ),
            )
        )
    return samples


def first(feed: Feed, predicate: str) -> float | None:
    for t, change in feed.changes:
        if change.change == "raised" and change.alert.kind == predicate:
            return t
    return None


def test_uplink_falling_behind_is_raised_before_frames_are_dropped(engine: RuleEngine) -> None:
    feed = Feed(engine)
    samples = degrading_uplink(60)
    for t, sample in enumerate(samples):
        feed.step(float(t), obs=sample)
    early = first(feed, "uplink_falling_behind")
    dropped = first(feed, "frames_dropped_network")
    assert dropped is not None, "the scenario must end with dropped frames, or it proves nothing"
    assert early is not None and early < dropped
    first_drop = next(t for t, s in enumerate(samples) if (s.frames_dropped_network_ratio_10s or 0) > 0)
    assert early < first_drop  # before a single frame was dropped, not merely before the drop alert


def test_early_warning_suggests_a_bitrate_that_fits_what_gets_through(engine: RuleEngine) -> None:
    feed = Feed(engine)
    raised = []
    for t, sample in enumerate(degrading_uplink(60)):
        raised = [
            c
            for c in feed.step(float(t), obs=sample)
            if c.change == "raised" and c.alert.kind == "uplink_falling_behind"
        ]
        if raised:
            break
    top = raised[0].alert.suggestions[0]
    # What OBS got out while its send buffer held a backlog: a measured capacity (agent/net/capacity.py).
    achieved_kbps = engine.derived["upload_capacity_bps"] / 1000
    assert engine.derived["upload_headroom_ratio"] < 1.0
    assert top.text.startswith("Lower the video bitrate to ")
    suggested = int(top.text.removeprefix("Lower the video bitrate to ").split()[0])
    # What gets through, with a 1.25x headroom, minus the audio, rounded down to 50 kbps.
    assert suggested == int((achieved_kbps / 1.25 - AUDIO_KBPS) // 50 * 50)
    link_kbps = 4000 - 50 * t  # what the simulated link carries right now
    assert suggested + AUDIO_KBPS <= 0.85 * link_kbps  # audio and at least 15 % headroom
    assert f"only {achieved_kbps / 1000:.2f} Mbit/s is getting through" in top.text
    assert not top.automatic and top.why

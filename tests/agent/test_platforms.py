"""Platform presets: the shipped files load, carry what the platforms publish, and bad files are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.platforms import PLATFORM_NAMES, load_preset, load_preset_file, preset_file


@pytest.mark.parametrize("name", PLATFORM_NAMES)
def test_shipped_presets_load_and_cite_their_source(name: str) -> None:
    preset = load_preset(name)
    assert preset.name == name and preset.profiles and "aac" in preset.audio.codecs
    text = preset_file(name).read_text()
    assert text.startswith("#") and (
        "Source" in text or "publishes no encoder specification" in text or name == "custom"
    )


def test_youtube_has_primary_and_backup_rtmps_ingests() -> None:
    youtube = load_preset("youtube")
    assert [i.url for i in youtube.primary_ingests] == ["rtmps://a.rtmps.youtube.com:443/live2"]
    assert [i.url for i in youtube.backup_ingests] == ["rtmps://b.rtmps.youtube.com:443/live2?backup=1"]
    assert youtube.keyframe_interval_max_s == 4


def test_tiktok_is_portrait_30fps_with_2s_keyframes_and_says_why_it_has_no_ingest() -> None:
    tiktok = load_preset("tiktok")
    assert {p.resolution for p in tiktok.profiles} == {"720x1280", "1080x1920"}
    assert {p.fps for p in tiktok.profiles} == {30}
    assert tiktok.keyframe_interval_s == 2 and tiktok.video_codecs == ["h264"] and tiktok.ingests == []
    assert "signed key valid for one session" in preset_file("tiktok").read_text()


def test_profile_lookup_matches_resolution_either_way_round_and_nearest_fps() -> None:
    twitch = load_preset("twitch")
    assert twitch.profile_for(1920, 1080, 59.94).label == "1920x1080@60"
    assert twitch.profile_for(1280, 720, 25).label == "1280x720@30"
    assert twitch.profile_for(1600, 900, 30).label in {"1920x1080@30", "1280x720@30"}
    assert twitch.profile_for(None, None, None) is twitch.default


def test_keyframe_problems_follow_the_platform() -> None:
    assert load_preset("twitch").keyframe_problem(2) is None
    assert "exactly 2 s" in (load_preset("twitch").keyframe_problem(4) or "")
    assert load_preset("youtube").keyframe_problem(4) is None
    assert "at most 4 s" in (load_preset("youtube").keyframe_problem(6) or "")
    assert "automatic" in (load_preset("custom").keyframe_problem(0) or "")


def test_bad_preset_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    text = preset_file("custom").read_text().replace("recommended_video_kbps = 2500", "recommended_video_kbps = 99999")
    bad = tmp_path / "custom.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_preset_file(bad)
    assert str(bad) in str(caught.value) and "profiles.3" in str(caught.value)
    assert "min_video_kbps <= recommended_video_kbps <= max_video_kbps" in str(caught.value)
    bad.write_text('name = "x"\nbitrate = 5\n')
    with pytest.raises(ConfigError, match=r"bitrate: unknown field"):
        load_preset_file(bad)

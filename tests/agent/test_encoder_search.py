"""The system source says plainly whether an encoder process was found."""

from __future__ import annotations

from agent.models import EncoderProcess
from agent.sources.system import _describe_encoder_search, encoder_kind


def test_no_encoder_process_is_said_in_plain_words() -> None:
    assert _describe_encoder_search(None, 123.0).startswith("none found: no OBS")
    assert _describe_encoder_search(None, -float("inf")) == "not searched yet"
    found = EncoderProcess(pid=42, name="obs64.exe", cpu_core_ratio=0.5, memory_rss_bytes=1, kind="obs")
    assert _describe_encoder_search(found, 1.0) == "found obs64.exe (pid 42)"


def test_encoder_names_are_recognised() -> None:
    assert encoder_kind("obs64.exe") == "obs"
    assert encoder_kind("Streamlabs OBS") == "streamlabs"
    assert encoder_kind("TikTok LIVE Studio.exe") == "tiktok_live_studio"
    assert encoder_kind("ffmpeg") == "ffmpeg"
    assert encoder_kind("bash") is None

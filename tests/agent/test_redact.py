"""The one redaction function: stream keys, passwords and tokens never leave the agent in clear."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.redact import MARK, RedactingFilter, redact, redact_url, register_secret


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtmp://live.twitch.tv/app/live_123456_abcdefghijkl", f"rtmp://live.twitch.tv/app/{MARK}"),
        ("rtmps://a.rtmps.youtube.com:443/live2/abcd-efgh-ijkl-mnop", f"rtmps://a.rtmps.youtube.com:443/live2/{MARK}"),
        ("rtmp://127.0.0.1:1935/live/fixture", f"rtmp://127.0.0.1:1935/live/{MARK}"),
        ("rtmp://a.rtmp.youtube.com/live2", "rtmp://a.rtmp.youtube.com/live2"),
        (
            "rtmp://live.twitch.tv/app/live_1_abcdefghijk?bandwidthtest=true",
            f"rtmp://live.twitch.tv/app/{MARK}?bandwidthtest=true",
        ),
        (
            "rtmp://push.tiktokcdn.com/third/stream-1?expire=1700000000&sign=0123abcd",
            f"rtmp://push.tiktokcdn.com/third/{MARK}?expire={MARK}&sign={MARK}",
        ),
        ("rtmp://user:hunter2@host/app/key", f"rtmp://{MARK}@host/app/{MARK}"),
    ],
)
def test_redact_url_keeps_server_and_app_but_not_the_key(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_finds_ingest_urls_inside_free_text() -> None:
    text = "publishing to rtmp://live.twitch.tv/app/live_42_sEcReTkEy0001 failed: connection reset"
    assert "sEcReTkEy0001" not in redact(text)
    assert "rtmp://live.twitch.tv/app/" in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"streamServiceSettings": {"key": "my-stream-key-1", "server": "auto"}}',
        '{"password":"s3cret-pass"}',
        "password=s3cret-pass&user=me",
        "token: tok_abcdef123",
        "Authorization: Bearer abcdef.ghijkl-123",
        "stream_key=xyz-123-secret",
    ],
)
def test_redact_removes_named_secrets(text: str) -> None:
    redacted = redact(text)
    for secret in ("my-stream-key-1", "s3cret-pass", "tok_abcdef123", "abcdef.ghijkl-123", "xyz-123-secret"):
        assert secret not in redacted
    assert MARK in redacted


def test_registered_secret_is_redacted_wherever_it_appears() -> None:
    register_secret("qwerty-unique-key-99")
    assert redact("the ingest said qwerty-unique-key-99 is invalid") == f"the ingest said {MARK} is invalid"


def test_short_registered_secrets_are_not_replaced_everywhere() -> None:
    register_secret("obs")  # OBS's recorded key: replacing it everywhere would mangle "sources.obs.password"
    assert redact("check sources.obs.password") == "check sources.obs.password"


def test_harmless_text_is_unchanged() -> None:
    text = "CPU at 93% for 12 s; frames dropped 1.2% (network); keyframe interval 2 s"
    assert redact(text) == text


def test_logging_filter_redacts_message_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.redact"):
            logger.info("connecting to %s", "rtmp://h/app/very-secret-key-1")
            try:
                raise ValueError("bad key rtmp://h/app/very-secret-key-2")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    assert "very-secret-key" not in caplog.text
    assert "rtmp://h/app/" in caplog.text


@given(st.from_regex(r"[A-Za-z0-9_-]{6,40}", fullmatch=True))
def test_any_key_after_an_rtmp_app_is_redacted(key: str) -> None:
    assert key not in redact(f"url rtmp://ingest.example.net/app/{key} here").replace("ingest.example.net", "")


def test_setting_paths_in_error_messages_are_not_mistaken_for_secrets() -> None:
    text = "config.toml: api.token: Input should be a valid string"
    assert redact(text) == text

"""Error messages about an ingest URL never carry its key, whatever shape the URL has."""

from __future__ import annotations

import pytest

from agent.errors import ConfigError
from agent.rtmp.url import parse_rtmp_url

KEY = "live_123456789_AbCdEfGhIjKlMnOpQr"


@pytest.mark.parametrize(
    "url",
    [
        f"rtmp://host:1935/{KEY}",  # no app path: the one segment is the key
        f"rtmp://host/{KEY}/",
        f"rtmp://host//{KEY}",
        KEY,  # the key alone, pasted into the URL field
        f"{KEY}:{KEY}",  # parses as a scheme
        f"rtmp://user:{KEY}@host/live",
        f"rtmp://host:{KEY}/live/x",  # the port field
        f"rtmp://host/live?{KEY}",
        f"rtmp://host/live#{KEY}",
        f"http://host/{KEY}",
        f"rtmp:///{KEY}",
    ],
)
def test_no_error_message_carries_the_key(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rtmp_url(url)
    assert KEY not in str(caught.value)
    assert KEY[:12] not in str(caught.value)


def test_the_app_is_shown_when_a_key_follows_it() -> None:
    with pytest.raises(ConfigError, match=r"rtmp://host:99999|invalid port") as caught:
        parse_rtmp_url(f"rtmp://host:99999/live/{KEY}")
    assert "/live/<redacted>" in str(caught.value)


def test_an_ingests_status_description_is_shown_on_one_line_without_escapes_or_the_key() -> None:
    from agent.rtmp import messages as m
    from agent.rtmp.publish_failures import describe_status

    url = parse_rtmp_url(f"rtmp://host/live/{KEY}")
    info = {"code": "NetStream.Publish.BadName", "description": f"bad\n\x1b[2Jkey {KEY}"}
    text = describe_status(url, m.Command("onStatus", 0, None, (info,)))
    assert text == "NetStream.Publish.BadName bad key <redacted>"

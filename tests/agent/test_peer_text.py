"""Peer-supplied text loses what could forge a log line or repaint a terminal, and keeps what a reader needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.peer_text import MAX_PEER_TEXT_CHARS, printable


def test_a_forged_log_line_in_a_flashver_stays_on_one_line_without_its_colours() -> None:
    flash = "FMLE/3.0\n2026-12-05 08:00:00 ERROR agent: \x1b[31mingest key is sk_live_x\x1b[0m\r"
    assert printable(flash) == "FMLE/3.0 2026-12-05 08:00:00 ERROR agent: ingest key is sk_live_x "


def test_osc_sequences_bidi_overrides_and_zero_width_characters_go() -> None:
    assert printable("a\x1b]0;title\x07b\u202ecba\u200bc\x00\x7f\x9b2Jd") == "abcbacd"


def test_ordinary_text_is_kept_as_is_including_non_ascii() -> None:
    for text in ("FMLE/3.0 (compatible; FMSc/1.0)", "obs-studio 30.1 — Café 日本", "LNX 9,0,124,2"):
        assert printable(text) == text


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert printable("x" * 5000) == "x" * (MAX_PEER_TEXT_CHARS - 1) + "…"


@given(st.text())
def test_the_result_never_holds_a_control_character_or_a_line_break(text: str) -> None:
    cleaned = printable(text)
    assert len(cleaned) <= MAX_PEER_TEXT_CHARS
    assert all(char.isprintable() or char == " " for char in cleaned), repr(cleaned)
    assert "\x1b" not in cleaned and "\n" not in cleaned

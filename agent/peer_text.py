"""Text a peer chose (an encoder's flashVer, its app name, an ingest's status description), made fit to show.

A peer's string reaches the log, the API and the TUI: a newline in it would forge a log line, an ANSI
escape would repaint a terminal, a bidi override would reorder what a reader sees. `printable` keeps the
visible text and drops the rest, and caps the length. Not redaction (that is `agent.redact`), not escaping
for HTML (the web page escapes what it shows).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Longer than any real encoder's flashVer ("FMLE/3.0 (compatible; FMSc/1.0)") or ingest description.
MAX_PEER_TEXT_CHARS: Final = 200

# A whole escape sequence (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, or ESC and one character), so no
# stray "[31m" is left behind when the ESC itself goes.
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?|\x9b[0-?]*[ -/]*[@-~]")
# Unicode categories that draw nothing or move text: controls, format characters (bidi overrides,
# zero-width), line and paragraph separators, surrogates, private use, unassigned.
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SPACING: Final = frozenset("\t\n\r\v\f\u2028\u2029\x85")


def _visible(char: str) -> str:
    if char in _SPACING:
        return " "
    category = unicodedata.category(char)
    if category in _INVISIBLE:
        return ""
    return " " if category == "Zs" else char  # no-break and other odd spaces: a plain one


def printable(text: str, max_chars: int = MAX_PEER_TEXT_CHARS) -> str:
    """`text` without escape sequences and invisible or control characters (line breaks and tabs become
    spaces, so words stay apart), at most
    `max_chars` characters (an ellipsis marks a cut)."""
    if text.isprintable() and text.isascii():  # the usual case, at the cost of two C loops
        cleaned = text
    else:
        cleaned = "".join(_visible(char) for char in _ESCAPE.sub("", text))
    return cleaned if len(cleaned) <= max_chars else cleaned[: max_chars - 1] + "…"

"""The incident strip's rows: what happened, newest first, one line each with its time (UTC, as the log).

A pure function of the incidents (agent/models/incidents.py) and the room the strip has: an incident too
long for the row carries on under its text; one that does not fit the height is left out whole, with a last
row saying how many more there are (on the History screen), so the strip never shows half of one.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from agent.models.incidents import Incident
from tui.render.tile import fit_line

SEVERITY_STYLES = {"critical": "bold red", "warning": "bold yellow", "info": ""}
SEVERITY_MARKS = {"critical": "!!", "warning": "! ", "info": "  "}
TIME_WIDTH = 12  # "20:14:03 !! "


def incident_line(incident: Incident) -> Text:
    text = Text(f"{incident.at:%H:%M:%S} ", style="dim")
    text.append(SEVERITY_MARKS[incident.severity] + " ", style=SEVERITY_STYLES[incident.severity] or "dim")
    text.append(incident.text, style=SEVERITY_STYLES[incident.severity])
    return text


def incident_rows(incidents: Sequence[Incident], width: int, height: int, empty: str) -> list[Text]:
    if not incidents:
        return [Text(empty, style="dim italic")]
    rows: list[Text] = []
    for index, incident in enumerate(incidents):
        fitted = _fit(incident_line(incident), width)
        left = len(incidents) - index
        if index == 0:
            # The newest is always shown, whole when it fits the strip, else its first rows: a strip that
            # said only "+ 19 earlier" would hide the one thing a technician needs now.
            rows.extend(fitted[:height])
            continue
        room = height - len(rows) - (1 if left > 1 else 0)  # keep a row to say what is left out
        if len(fitted) > room:
            if height > len(rows):
                rows.append(Text(f"+ {left} earlier: History (key 4)", style="dim"))
            break
        rows.extend(fitted)
    return [row for row in rows if row.plain][:height]


def _fit(line: Text, width: int) -> list[Text]:
    """Rows of at most `width`; continuation rows start under the text, after the time."""
    if width < TIME_WIDTH + 16:
        return fit_line(line, width)
    first, remainder = _split(line, width)
    rows = [first]
    while remainder.cell_len and len(rows) < 10:
        row, remainder = _split(Text(" " * TIME_WIDTH) + remainder, width)
        rows.append(row)
    return rows


def _split(line: Text, width: int) -> tuple[Text, Text]:
    if line.cell_len <= width:
        return line, Text("")
    plain = line.plain
    start = TIME_WIDTH
    cut = plain.rfind(" ", start + 1, width + 1)
    if cut <= start:
        cut = width
    head = line[:cut]
    head.rstrip()
    tail = line[cut:]
    return head, tail[len(tail.plain) - len(tail.plain.lstrip(" ")) :]

"""The help overlay: the keys, and how to read the colours and labels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP_TEXT = """\
# streamhealth — keys

| Key | Does |
| --- | --- |
| `1` `2` `3` `4` | Live · Alerts · Preflight · History |
| `a` / `space` | acknowledge the chosen alert (Alerts) |
| `A` | acknowledge every active alert (Alerts) |
| `r` | run the preflight again (Preflight) · reload the runs (History) |
| `t` | light / dark theme |
| `ctrl+p` | command palette: every action by name |
| `?` | this help · `escape` closes it |
| `q` / `ctrl+c` | quit |

## Reading the screen
Every colour comes with a word: **OK** (green), **WARN** (yellow), **CRIT** (red),
**NO DATA** (grey: the source is not configured or has not answered yet) and
**STALE** (grey: the agent is unreachable; the values shown are the last ones received, with their age).

Sparklines show the last five minutes, newest on the right. Tile colours are a quick
reading of the numbers; the agent's rules decide the alerts (Alerts screen), with backup plans
(**[AUTO]** marks the ones the agent carries out itself).
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP_TEXT)

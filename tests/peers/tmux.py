"""A terminal a technician would have, for driving the TUI end to end: tmux, on a private server.

A private socket (`-L`) with no configuration file (`-f /dev/null`): nothing of a user's tmux (their
~/.tmux.conf, their sessions) decides the size or the keys. The pane's program gets the test's environment
without COLUMNS and LINES: Python's readline, once imported (under this suite's pytest it is, by a
plugin's imports), writes COLUMNS=80 LINES=24 into the process's C environment (not os.environ), which a
child started with `env=None` inherits, and Textual takes its size from them before the terminal's
(shutil.get_terminal_size): the TUI drew 80x24 in a 130x40 pane, and never followed a resize. `size()`
reads back what the pane is; the screen shows what the program made of it. Everything the server started
ends with it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


def tmux_available() -> tuple[bool, str]:
    if shutil.which("tmux") is None:
        return False, "tmux is not installed (apt-get install tmux)"
    return True, ""


class TmuxPane:
    """One window of one session on its own tmux server."""

    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True)

    def capture(self) -> str:
        """The screen as it is now, as text (no colours), one line per row."""
        return self._tmux("capture-pane", "-p", "-t", self.session).stdout

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def size(self) -> tuple[int, int]:
        """(columns, rows) of the pane the program draws in."""
        width, height = self._tmux("display", "-p", "-t", self.session, "#{pane_width}x#{pane_height}").stdout.split(
            "x"
        )
        return int(width), int(height)


@contextlib.contextmanager
def tmux_pane(command: list[str], width: int, height: int, cwd: Path | None = None) -> Iterator[TmuxPane]:
    """Runs `command` in a detached width x height tmux window; the server is killed when the block ends."""
    socket = f"streamhealth-test-{os.getpid()}-{id(command):x}"
    session = "main"
    shell = (f"cd {shlex.quote(str(cwd))} && " if cwd else "") + "exec " + shlex.join(command)
    size = ["-x", str(width), "-y", str(height)]
    new = ["tmux", "-L", socket, "-f", os.devnull, "new-session", "-d", "-s", session, *size, shell]
    environment = {name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}
    subprocess.run(new, check=True, capture_output=True, env=environment)
    pane = TmuxPane(socket, session)
    socket_path = Path(pane._tmux("display", "-p", "#{socket_path}").stdout.strip())
    try:
        # Keep the window at this size whatever clients come and go (none attach here; a person may, to watch).
        subprocess.run(["tmux", "-L", socket, "set-option", "-g", "default-size", f"{width}x{height}"], check=True)
        yield pane
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
        socket_path.unlink(missing_ok=True)  # the server leaves its socket behind in /tmp/tmux-UID

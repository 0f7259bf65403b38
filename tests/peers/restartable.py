"""A child process a test stops, kills and starts again at will (agents, collectors), its output in a log file.

The test that starts one must stop it (`stop(signal.SIGKILL)` in a fixture's cleanup) so it is always reaped.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.peers.wait import port_open, wait_until


class Process:
    """A child process we stop, kill and start again at will; always reaped at the end."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.command, self.env, self.log_path, self.port = command, env, log_path, port
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=log)
        if self.port is not None:
            wait_until(
                lambda: port_open("127.0.0.1", self.port) or self.popen.poll() is not None,  # type: ignore[union-attr,arg-type]
                30,
                f"{self.command[3:5]} on port {self.port}",
            )
            assert self.popen.poll() is None, self.log_path.read_text()[-2000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen = None

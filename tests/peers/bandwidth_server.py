"""`streamhealth bandwidth-server` as a real peer: a subprocess on a free port, optionally inside a namespace."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from tests.peers.process import listening_process
from tests.peers.wait import free_port


@dataclass
class BandwidthServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def bandwidth_server(host: str = "127.0.0.1", netns_exec: list[str] | None = None) -> Iterator[BandwidthServer]:
    port = free_port() if netns_exec is None else free_port("127.0.0.1")
    command = [sys.executable, "-m", "agent.cli", "bandwidth-server", "--host", host, "--port", str(port)]
    with listening_process(
        command, host, port, what="bandwidth-server", netns_exec=netns_exec, timeout_s=20
    ) as process:
        yield BandwidthServer(host, port, process)

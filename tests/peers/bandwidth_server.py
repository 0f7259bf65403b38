"""`streamhealth bandwidth-server` as a real peer: a subprocess on a free port, optionally inside a namespace."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from tests.peers.wait import free_port, port_open, wait_until


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
    command = [*(netns_exec or []), sys.executable, "-m", "agent.cli", "bandwidth-server", "--host", host]
    process = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    netns = netns_exec[3] if netns_exec and netns_exec[:3] == ["ip", "netns", "exec"] else None
    try:
        wait_until(
            lambda: process.poll() is not None or port_open(host, port, netns),
            20,
            f"bandwidth-server to listen on {host}:{port}",
        )
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"bandwidth-server exited with {process.returncode}: {stderr}")
        yield BandwidthServer(host, port, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stderr:
            process.stderr.close()

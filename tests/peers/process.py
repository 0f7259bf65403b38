"""A peer process that serves on a port: started, waited for, and always stopped and reaped."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator

from tests.peers.wait import port_open, wait_until


def netns_of(netns_exec: list[str] | None) -> str | None:
    """The namespace name in `ip netns exec NAME ...` arguments, if any."""
    return netns_exec[3] if netns_exec and netns_exec[:3] == ["ip", "netns", "exec"] else None


@contextlib.contextmanager
def listening_process(
    command: list[str],
    host: str,
    port: int,
    *,
    what: str,
    netns_exec: list[str] | None = None,
    timeout_s: float = 10,
    diagnostics: Callable[[], str] = lambda: "",
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` (inside the namespace when `netns_exec` is given), wait until `host:port`
    accepts connections, and stop it when the block ends, failed or not. If it exits before
    listening, raise with its stderr and `diagnostics()`."""
    process = subprocess.Popen([*(netns_exec or []), *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    netns = netns_of(netns_exec)
    try:
        wait_until(
            lambda: process.poll() is not None or port_open(host, port, netns),
            timeout_s,
            f"{what} to listen on {host}:{port}",
        )
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"{what} exited with {process.returncode}: {stderr}{diagnostics()}")
        yield process
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

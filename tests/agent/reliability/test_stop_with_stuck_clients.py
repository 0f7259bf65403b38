"""SIGTERM while 20 event-stream clients have stopped reading: the agent stops quietly (no
"Exception in ASGI application"), writes its last line, and exits 0. Connections whose response is
stuck in a write are cut off after a short grace instead of waiting for uvicorn's own timeout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.logs.reader import read_records, run_files
from agent.models import RunStopped
from tests.peers.wait import free_port, port_open, wait_until

pytestmark = pytest.mark.integration


def test_sigterm_with_20_clients_that_stopped_reading_stops_quietly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")},
        "STREAMHEALTH_API__PORT": str(port),
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
        # Ten ticks a second fill the clients' connections quickly.
        "STREAMHEALTH_SAMPLING__INTERVAL_S": "0.1",
        "STREAMHEALTH_SAMPLING__HISTORY_S": "600",
    }
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "agent"], env=env, stderr=subprocess.PIPE, text=True)
    clients: list[socket.socket] = []
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "the agent's port")
        for _ in range(20):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", port))
            client.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: agent\r\n\r\n")
            clients.append(client)  # and never read again

        def queued_bytes() -> int:
            out = subprocess.run(["ss", "-tnH", "sport", "=", str(port)], capture_output=True, text=True).stdout
            return sum(int(line.split()[2]) for line in out.splitlines() if line.startswith("ESTAB"))

        wait_until(lambda: queued_bytes() > 20 * 256 * 1024, 60, "the clients' connections to back up")
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=30)
    finally:
        for client in clients:
            client.close()
        if agent.poll() is None:
            agent.kill()
            agent.communicate(timeout=10)
    assert agent.returncode == 0, stderr
    assert "Exception in ASGI application" not in stderr and "Traceback" not in stderr, stderr
    last = list(read_records(run_files(tmp_path / "logs")[0]))[-1]
    assert isinstance(last, RunStopped) and last.reason == "received SIGTERM"

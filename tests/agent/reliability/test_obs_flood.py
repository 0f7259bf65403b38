"""A broken peer at the OBS port that streams random bytes nonstop costs the agent little: the
connection is dropped as soon as the peer has sent more than any WebSocket upgrade answer, and the
source says the peer is not obs-websocket (instead of reading it at full speed until a timeout)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from agent.models import ObsSample
from agent.obs.client import MAX_UPGRADE_RESPONSE_BYTES
from agent.sources.obs import ObsSource
from tests.agent.helpers import make_settings
from tests.peers.wait import async_wait_until

_FLOOD = """
import os, socket, sys, threading
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print(server.getsockname()[1], flush=True)
chunk = os.urandom(65536)
def serve(peer):
    try:
        while True:
            peer.sendall(chunk)
    except OSError:
        pass
while True:
    peer, _ = server.accept()
    threading.Thread(target=serve, args=(peer,), daemon=True).start()
"""


class _Sink:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def publish(self, source: str, sample: object) -> None:
        if isinstance(sample, ObsSample) and sample.connection == "not_connected" and sample.connection_detail:
            self.failures.append(sample.connection_detail)

    def report_failure(self, source: str, message: str) -> None:
        self.failures.append(message)


async def test_a_peer_flooding_the_obs_port_is_dropped_at_once_and_named(tmp_path: Path) -> None:
    flood = subprocess.Popen([sys.executable, "-c", _FLOOD], stdout=subprocess.PIPE, text=True)
    try:
        assert flood.stdout is not None
        port = int(flood.stdout.readline())
        settings = make_settings(tmp_path, SOURCES__OBS__URL=f"ws://127.0.0.1:{port}")
        source = ObsSource(settings.sources.obs)
        sink = _Sink()
        task = asyncio.create_task(source.run(sink))  # type: ignore[arg-type]
        try:
            await async_wait_until(lambda: sink.failures, 20, "the OBS source to give up on the peer")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await source.close()
    finally:
        flood.kill()
        flood.wait(5)
    # Before: "nothing answers at ... (TimeoutError)" after reading the flood for the whole open timeout.
    assert "is not an obs-websocket server" in sink.failures[0], sink.failures
    assert MAX_UPGRADE_RESPONSE_BYTES <= 64 * 1024

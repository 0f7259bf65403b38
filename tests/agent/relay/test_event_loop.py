"""uvloop while the relay runs: chosen only then, and the relay behaves the same on it (byte-exact forwarding,
hostile input closing one connection), in-process and in a real agent process."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.relay.event_loop import loop_factory
from tests.agent.helpers import make_settings
from tests.agent.relay.test_relay_loopback import (
    test_hostile_input_closes_that_connection_with_a_log_line_and_the_relay_keeps_serving as hostile_input,
)
from tests.agent.relay.test_relay_loopback import (
    test_recorded_encoder_through_the_relay_reaches_the_ingest_byte_exact as recorded_encoder,
)
from tests.peers.wait import free_port, wait_until

needs_uvloop = pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed here")


@needs_uvloop
def test_uvloop_is_chosen_only_while_the_relay_runs_and_settings_allow_it(tmp_path: Path) -> None:
    import uvloop

    relay_on = make_settings(tmp_path, ingest__primary="rtmp://127.0.0.1/live/k")
    assert loop_factory(relay_on) is uvloop.new_event_loop
    assert loop_factory(make_settings(tmp_path)) is None  # no ingest: no relay
    disabled = make_settings(tmp_path, ingest__primary="rtmp://127.0.0.1/live/k", relay__enabled="false")
    assert loop_factory(disabled) is None
    asyncio_asked = make_settings(tmp_path, ingest__primary="rtmp://127.0.0.1/live/k", relay__event_loop="asyncio")
    assert loop_factory(asyncio_asked) is None


@needs_uvloop
def test_the_relay_forwards_recorded_encoders_byte_exact_on_uvloop(fixtures_dir: Path, recording: str) -> None:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.get_loop().__class__.__module__.startswith("uvloop")
        runner.run(recorded_encoder(fixtures_dir, recording))


@needs_uvloop
def test_hostile_input_closes_only_that_connection_on_uvloop(caplog: pytest.LogCaptureFixture) -> None:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(hostile_input(caplog))


def _relay_log_line(tmp_path: Path, **environ: str) -> str:
    """Start a real `streamhealth agent` with the relay, return its "relay listening" log line, stop it."""
    relay_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")},
        "STREAMHEALTH_LOGS__ENABLED": "false",
        "STREAMHEALTH_API__PORT": "0",
        "STREAMHEALTH_SOURCES__SYSTEM__ENABLED": "false",
        "STREAMHEALTH_SOURCES__NETWORK__ENABLED": "false",
        "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
        "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
        "STREAMHEALTH_SOURCES__UPLINK__ENABLED": "false",
        "STREAMHEALTH_INGEST__PRIMARY": "rtmp://127.0.0.1:9/live/k",
        "STREAMHEALTH_RELAY__LISTEN": f"127.0.0.1:{relay_port}",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        **environ,
    }
    log_path = tmp_path / f"agent-{len(list(tmp_path.glob('agent-*')))}.log"
    with log_path.open("wb") as log_file:
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "agent"], env=env, stdout=log_file, stderr=log_file
        )
        try:
            wait_until(
                lambda: agent.poll() is not None or "relay listening" in log_path.read_text(), 30, "the relay to listen"
            )
        finally:
            agent.terminate()
            agent.wait(10)
    lines = [line for line in log_path.read_text().splitlines() if "relay listening" in line]
    assert lines, log_path.read_text()
    return lines[0]


@pytest.mark.integration
@needs_uvloop
def test_a_real_agent_runs_the_relay_on_uvloop_unless_told_to_use_asyncio(tmp_path: Path) -> None:
    assert "(event loop: uvloop)" in _relay_log_line(tmp_path)
    assert "(event loop: asyncio)" in _relay_log_line(tmp_path, STREAMHEALTH_RELAY__EVENT_LOOP="asyncio")

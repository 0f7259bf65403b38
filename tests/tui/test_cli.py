"""`streamhealth` start-up: the TUI is the default command, and without an agent at the configured
address one is embedded (on a free port when the configured one is taken by something else)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.settings import load_settings
from tui import cli


def test_tui_command_is_listed_and_takes_agent_and_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["tui", "--help"])
    out = capsys.readouterr().out
    assert "--agent URL" in out and "--token TOKEN" in out


async def test_nothing_answers_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await cli.agent_answers(f"http://127.0.0.1:{port}", None) is False


@pytest.mark.integration
async def test_embedded_agent_takes_a_free_port_when_the_configured_one_is_busy_and_answers(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = load_settings(environ={"STREAMHEALTH_API__PORT": str(port), "STREAMHEALTH_LOGS__DIR": str(tmp_path)})
        server = await cli.start_embedded(settings)
        try:
            assert server.port not in (None, port)
            assert await cli.agent_answers(server.url, None) is True
        finally:
            await server.stop("test finished")

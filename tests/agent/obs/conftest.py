from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.peers.obs_websocket import load_recording


@pytest.fixture(scope="session")
def obs_session_path(fixtures_dir: Path) -> Path:
    return fixtures_dir / "obs-29.0.2" / "websocket-session.jsonl"


@pytest.fixture(scope="session")
def obs_recording(obs_session_path: Path) -> list[dict[str, Any]]:
    return load_recording(obs_session_path)


def recorded_response(recording: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    return next(
        line["msg"]["d"]
        for line in recording
        if line["dir"] == "recv" and line["msg"]["op"] == 7 and line["msg"]["d"]["requestId"] == request_id
    )

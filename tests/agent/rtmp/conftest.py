"""Helpers for the RTMP tests: the recorded sessions, and parsing a whole direction of one into events."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from agent.rtmp import messages as m
from agent.rtmp.connection import Role, RtmpConnection

RECORDINGS = ("obs-29.0.2", "ffmpeg-5.1")


def read_recording(fixtures_dir: Path, recording: str, direction: str) -> bytes:
    return (fixtures_dir / recording / f"rtmp-publish.{direction}.bin").read_bytes()


def parse_direction(data_pieces: Iterable[bytes], direction: str) -> list[m.Event]:
    """Feed one direction of a recorded session to a connection in the role that would receive it."""
    connection = RtmpConnection(Role.SERVER if direction == "c2s" else Role.CLIENT)
    events: list[m.Event] = []
    for piece in data_pieces:
        connection.receive_data(piece)
        events.extend(connection.events_received())
    return events


@pytest.fixture(params=RECORDINGS)
def recording(request: pytest.FixtureRequest) -> str:
    return str(request.param)

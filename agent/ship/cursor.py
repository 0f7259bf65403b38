"""The shipping cursor: how far into the health log the collector has acknowledged.

Saved (crash-safely, agent/ship/durable.py) only after the collector answered that a batch is committed,
never before: a crash between the two resends that batch, which the collector recognises by its seqs.
A missing or corrupt cursor is rebuilt from the collector's own `last_seq` for this agent, so a restart
neither resends whole files nor skips a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.ship.durable import read_json, write_json_atomically
from agent.ship.spool import Position

CURSOR_FILE = ".streamhealth-ship-cursor.json"


@dataclass(frozen=True)
class Cursor:
    agent_id: str
    position: Position
    last_seq: int


def load_cursor(directory: Path, agent_id: str) -> Cursor | None:
    data = read_json(directory / CURSOR_FILE)
    if data is None or data.get("agent_id") != agent_id:
        return None  # none yet, unreadable, or written for another identity: rebuilt from the collector
    file, offset, last_seq = data.get("file"), data.get("offset"), data.get("last_seq")
    if not isinstance(file, str) or not isinstance(offset, int) or not isinstance(last_seq, int):
        return None
    return Cursor(agent_id, Position(file, offset), last_seq)


def save_cursor(directory: Path, cursor: Cursor) -> None:
    write_json_atomically(
        directory / CURSOR_FILE,
        {
            "agent_id": cursor.agent_id,
            "file": cursor.position.file,
            "offset": cursor.position.offset,
            "last_seq": cursor.last_seq,
        },
    )

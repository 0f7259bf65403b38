"""The collector under attack from a local program holding one agent token, while two real agents ship.

A real collector process (SQLite, then a real PostgreSQL), a victim agent and another healthy agent
shipping at 10 ticks a second; meanwhile an attacker with its own agent token forges seqs under the
victim's id, sends text the store cannot hold (NUL, 100k-deep nesting, invalid UTF-8), NUL read
parameters, and holds hundreds of slow request bodies. Each attack seen working in issue 22 is refused,
and at the end the victim's records in the collector equal its log line for line, and neither agent
was ever answered a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.models.shipping import AGENT_ID_HEADER, INGEST_PATH
from agent.ship.sequence import IDENTITY_FILE
from tests.collector.helpers import add_agent_tokens, add_tokens
from tests.collector.test_nothing_lost import agent_process, logged_lines, processes, stored_lines
from tests.peers.postgres import postgres_available, postgres_server
from tests.peers.restartable import Process
from tests.peers.wait import free_port, wait_until

pytestmark = pytest.mark.integration

BODY_DEADLINE_S = 3.0
SLOW_BODIES = 300
FORGED_SEQ = 2**63 - 2


@contextlib.contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.sqlite3'}"
        return
    available, reason = postgres_available()
    if not available:
        pytest.skip(reason)
    with postgres_server() as server, server.database() as url:
        yield url


def record_line(seq: int, **fields: object) -> str:
    return json.dumps({"seq": seq, "type": "tick", "at": "2026-12-05T10:00:00+00:00", **fields})


async def post(url: str, token: str, agent_id: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await http.post(
            INGEST_PATH,
            content=gzip.compress(body),
            headers={"Authorization": f"Bearer {token}", AGENT_ID_HEADER: agent_id, "Content-Encoding": "gzip"},
        )


async def slow_body(port: int, token: str) -> tuple[bytes, float]:
    """Headers, then a byte every 1.3 s of a 1 MB body: what comes back, and when the collector closed."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {INGEST_PATH} HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {token}\r\n{AGENT_ID_HEADER}: "
        f"attacker-pc\r\nContent-Encoding: gzip\r\nContent-Length: 1000000\r\n\r\n".encode()
    )

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            while True:
                writer.write(b"\x00")
                await writer.drain()
                await asyncio.sleep(1.3)

    trickling = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.read(), 60)
    except ConnectionResetError:
        # The collector closed with our latest byte unread (it arrived as the deadline struck): the kernel
        # answers that with a reset, which may discard the 408 before we read it. Closed all the same.
        answer = b"reset"
    finally:
        trickling.cancel()
        writer.close()
    return answer, time.monotonic() - started


def agent_id_of(folder: Path) -> str:
    wait_until(lambda: (folder / IDENTITY_FILE).exists(), 30, f"{folder.name}'s identity")
    return str(json.loads((folder / IDENTITY_FILE).read_text())["agent_id"])


def server_errors_seen(process: Process) -> list[str]:
    """The agent's own account of the collector's 5xx answers (the shipper logs each failure)."""
    text = process.log_path.read_text(errors="replace")
    return re.findall(r"collector answered 5\d\d[^\n]*", text)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_an_agent_token_holder_cannot_touch_another_agents_records_nor_fail_anyone_elses_batches(
    store: str, tmp_path: Path
) -> None:
    with database(store, tmp_path) as database_url, processes() as running:
        _, reader_token = await add_tokens(database_url)
        victim_token, other_token, attacker_token, unused_token = await add_agent_tokens(
            database_url, ["victim", "other", "attacker", "unused"]
        )
        port = free_port()
        command = [sys.executable, "-m", "tui.cli", "collector", "serve", "--database", database_url]
        command += ["--port", str(port), "--body-deadline-s", str(BODY_DEADLINE_S)]
        collector = Process(command, dict(os.environ), tmp_path / "collector.log", port)
        running.append(collector)
        collector.start()
        url = f"http://127.0.0.1:{port}"
        agents = {
            "victim": agent_process(tmp_path, "victim", url, victim_token),
            "other": agent_process(tmp_path, "other", url, other_token),
        }
        for agent in agents.values():
            running.append(agent)
            agent.start()
        victim_id = agent_id_of(tmp_path / "victim")
        wait_until(lambda: len(stored_lines(url, reader_token, victim_id)) >= 20, 60, "the victim to ship")

        # 1. forged seqs under the victim's id: its next 60, and one near 2^63 (issue 22: stored as the
        #    victim's, its real lines later dropped as duplicates, its shipper silenced after a cursor reset)
        assert (await post(url, attacker_token, "attacker-pc", record_line(1).encode() + b"\n")).status_code == 200
        next_seq = json.loads(stored_lines(url, reader_token, victim_id)[-1])["seq"] + 1
        forged = "".join(record_line(seq) + "\n" for seq in [*range(next_seq + 20, next_seq + 80), FORGED_SEQ])
        as_attacker = await post(url, attacker_token, victim_id, forged.encode())
        assert as_attacker.status_code == 403, as_attacker.text
        as_unused = await post(url, unused_token, victim_id, forged.encode())
        assert as_unused.status_code == 403, as_unused.text

        # 2. text the store cannot hold, from the attacker's own id, many times while the agents ship
        deep = '{"seq":5,"type":"x","v":' + "[" * 100_000 + "]" * 100_000 + "}"
        unstorable = [
            (record_line(2, session_id="s\u0000") + "\n").encode(),
            (record_line(3, type="ti\u0000ck") + "\n").encode(),
            (record_line(4, platform="\u0000") + "\n").encode(),
            (deep + "\n").encode(),
            b'{"seq":6,"type":"\xff"}\n',
        ]
        answers = await asyncio.gather(
            *(post(url, attacker_token, "attacker-pc", body) for _ in range(20) for body in unstorable)
        )
        assert {answer.status_code for answer in answers} == {400}
        assert all(answer.headers["content-type"] == "application/json" for answer in answers)

        # 3. read parameters the store cannot hold
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {reader_token}"}, timeout=30
        ) as http:
            for path in ("/api/v1/sessions?agent=%00", "/api/v1/sessions?platform=%00", "/api/v1/sessions/%00"):
                assert (await http.get(path)).status_code == 422, path

        # 4. slow bodies: each closed at the deadline, while the agents go on shipping
        slow = await asyncio.gather(*(slow_body(port, attacker_token) for _ in range(SLOW_BODIES)))
        assert all(answer.startswith(b"HTTP/1.1 408 ") or answer == b"reset" for answer, _ in slow), {
            answer[:40] for answer, _ in slow
        }
        longest_s = max(took for _, took in slow)
        assert longest_s < BODY_DEADLINE_S + 10, longest_s  # not held for the 1 MB's 11 days at 1 byte/s

        # the agents stop cleanly; the collector must hold exactly what each logged
        for agent in agents.values():
            agent.stop(signal.SIGTERM)
        for name, agent in agents.items():
            folder = tmp_path / name
            agent_id = agent_id_of(folder)
            wait_until(
                lambda folder=folder, agent_id=agent_id: (
                    stored_lines(url, reader_token, agent_id) == logged_lines(folder)
                ),
                60,
                f"{name}'s records to equal its log",
            )
            assert server_errors_seen(agent) == [], name
        stored = stored_lines(url, reader_token, victim_id)
        assert len(stored) >= 40 and FORGED_SEQ not in {json.loads(record)["seq"] for record in stored}

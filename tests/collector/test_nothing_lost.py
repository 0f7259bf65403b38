"""The proof that nothing is lost: real agents ship to real collector processes while we break things.

Agents tick 10 times a second. While they run, the collectors are stopped for a while and started again,
one agent is killed with SIGKILL and restarted on the same log folder, and the collector is restarted (with
PostgreSQL: one of two collectors behind a load balancer is killed with SIGKILL). At the end the collector
must hold exactly the complete lines each agent wrote to its log, each once, in log order.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.ship.sequence import IDENTITY_FILE
from agent.ship.spool import LogSpool, line_seq
from tests.collector.helpers import add_agent_tokens, add_tokens
from tests.peers.balancer import balancer
from tests.peers.restartable import Process
from tests.peers.wait import free_port, wait_until

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop(signal.SIGKILL)


def collector_process(database_url: str, tmp_path: Path, name: str) -> Process:
    port = free_port()
    command = [sys.executable, "-m", "tui.cli", "collector", "serve", "--database", database_url, "--port", str(port)]
    return Process(command, dict(os.environ), tmp_path / f"{name}.log", port)


def agent_process(tmp_path: Path, name: str, url: str, token: str) -> Process:
    env = dict(os.environ)
    env.update(
        {
            "STREAMHEALTH_LOGS__DIR": str(tmp_path / name),
            "STREAMHEALTH_API__PORT": "0",
            "STREAMHEALTH_SAMPLING__INTERVAL_S": "0.1",
            "STREAMHEALTH_SAMPLING__HISTORY_S": "600",
            "STREAMHEALTH_SOURCES__OBS__ENABLED": "false",
            "STREAMHEALTH_SOURCES__FFMPEG__ENABLED": "false",
            "STREAMHEALTH_SOURCES__NETWORK__ENABLED": "false",
            "STREAMHEALTH_SHIP__URL": url,
            "STREAMHEALTH_SHIP__TOKEN": token,
            "STREAMHEALTH_SHIP__AGENT_NAME": name,
            "STREAMHEALTH_SHIP__BATCH_INTERVAL_S": "0.2",
            "STREAMHEALTH_SHIP__MAX_BACKOFF_S": "1",
        }
    )
    return Process([sys.executable, "-m", "tui.cli", "agent"], env, tmp_path / f"{name}.log")


def logged_lines(folder: Path) -> list[str]:
    """Every complete record line the agent wrote, in log order (a line torn by SIGKILL is not a record)."""
    lines = []
    for path in LogSpool(folder).files():
        for line in path.read_bytes().split(b"\n"):
            if line_seq(line) is not None:
                lines.append(line.decode())
    return lines


def stored_lines(url: str, reader_token: str, agent_id: str) -> list[str]:
    lines: list[str] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {reader_token}"}, timeout=10) as http:
        while True:
            after = json.loads(lines[-1])["seq"] if lines else 0
            page = http.get(f"/api/v1/agents/{agent_id}/records", params={"after_seq": after, "limit": 5000})
            page.raise_for_status()
            if not page.json():
                return lines
            lines += [record["line"] for record in page.json()]


def stored_count(url: str, reader_token: str) -> dict[str, int]:
    try:
        response = httpx.get(f"{url}/api/v1/agents", headers={"Authorization": f"Bearer {reader_token}"}, timeout=5)
    except httpx.HTTPError:
        return {}
    return {agent["name"]: agent["records"] for agent in response.json()} if response.status_code == 200 else {}


def grows(url: str, reader: str, name: str, by: int) -> None:
    start = stored_count(url, reader).get(name, 0)
    wait_until(lambda: stored_count(url, reader).get(name, 0) >= start + by, 60, f"{name} to ship {by} more lines")


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_the_collector_holds_exactly_what_the_agents_logged_through_restarts_and_kills(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'collector.sqlite3'}"
        database_cm: contextlib.AbstractContextManager[str] = contextlib.nullcontext(database_url)
    else:
        database_cm = request.getfixturevalue("postgres").database()
    with database_cm as database_url, processes() as running:
        _, reader_token = await add_tokens(database_url)
        tokens = dict(zip(("studio", "van"), await add_agent_tokens(database_url, ["studio", "van"]), strict=True))
        collectors = [
            collector_process(database_url, tmp_path, f"collector-{i}")
            for i in range(2 if store == "postgresql" else 1)
        ]
        for collector in collectors:
            running.append(collector)
            collector.start()
        with balancer([("127.0.0.1", c.port) for c in collectors if c.port]) as front:
            url = f"http://127.0.0.1:{front.port}"
            agents = {name: agent_process(tmp_path, name, url, tokens[name]) for name in ("studio", "van")}
            for agent in agents.values():
                running.append(agent)
                agent.start()
            for name in agents:
                grows(url, reader_token, name, 20)

            # 1. every collector stopped for a while: agents keep logging and retry with backoff
            for collector in collectors:
                collector.stop()
            time.sleep(2.0)  # the outage itself: what we measure is that nothing is lost through it
            for collector in collectors:
                collector.start()
            grows(url, reader_token, "studio", 30)

            # 2. an agent killed mid-flight and restarted on the same log folder
            agents["studio"].stop(signal.SIGKILL)
            agents["studio"].start()
            grows(url, reader_token, "studio", 20)

            # 3. the collector restarted (SQLite) / one of two collectors killed (PostgreSQL)
            if store == "sqlite":
                collectors[0].stop()
                collectors[0].start()
            else:
                collectors[1].stop(signal.SIGKILL)
            for name in agents:
                grows(url, reader_token, name, 20)

            # the end: agents stop, shipping what is left before they exit (else on their next start)
            for agent in agents.values():
                agent.stop()
            for name in agents:
                folder = tmp_path / name
                agent_id = json.loads((folder / IDENTITY_FILE).read_text())["agent_id"]
                expected = logged_lines(folder)
                assert len(expected) > 60
                count = len(expected)
                wait_until(
                    lambda name=name, count=count: stored_count(url, reader_token).get(name, 0) >= count,
                    30,
                    f"{name}'s {len(expected)} lines at the collector",
                )
                stored = stored_lines(url, reader_token, agent_id)
                assert stored == expected, f"{name}: {len(stored)} stored, {len(expected)} logged"
                seqs = [json.loads(line)["seq"] for line in stored]
                assert seqs == sorted(set(seqs))

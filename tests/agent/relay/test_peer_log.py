"""The relay's per-connection warnings: a few per peer address per window, then a count of the rest."""

from __future__ import annotations

import logging

import pytest

from agent.relay.peer_log import MAX_PEERS_TRACKED, PeerLog


def test_a_peer_gets_its_burst_then_one_line_saying_the_rest_are_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = PeerLog(logging.getLogger("test.peer_log"), burst=5, window_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.peer_log"):
        for index in range(300):
            log.warning("127.0.0.1", "closing the connection from 127.0.0.1:%d: malformed", index)
        log.warning("10.0.0.2", "closing the connection from 10.0.0.2:1: malformed")
        assert len(caplog.records) == 5 + 1 + 1  # five, "holding back", the other peer's line
        assert "holding back" in caplog.records[5].getMessage()
        assert log.held_back_total == 295
        now[0] = 61.0
        log.warning("127.0.0.1", "closing the connection from 127.0.0.1:1: malformed")
    assert "295 more lines about connections from 127.0.0.1" in caplog.records[-2].getMessage()
    assert caplog.records[-1].getMessage().endswith("malformed")


def test_the_peers_it_remembers_are_bounded() -> None:
    log = PeerLog(logging.getLogger("test.peer_log.many"), clock=lambda: 0.0)
    for index in range(MAX_PEERS_TRACKED + 500):
        log.warning(f"10.0.{index // 256}.{index % 256}", "line")
    assert len(log._windows) == MAX_PEERS_TRACKED

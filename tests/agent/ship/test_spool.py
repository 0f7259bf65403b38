"""The log as the spool: seqs stamped once and never reused, complete lines only, files in seq order."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.ship.cursor import CURSOR_FILE, Cursor, load_cursor, save_cursor
from agent.ship.sequence import IDENTITY_FILE, LEASE, FolderLock, Sequencer
from agent.ship.spool import LogSpool, Position


def write_log(directory: Path, name: str, seqs: range, tail: bytes = b"") -> Path:
    path = directory / name
    with path.open("ab") as handle:
        for seq in seqs:
            handle.write(
                json.dumps({"seq": seq, "type": "tick", "at": "2026-11-30T00:00:00+00:00"}).replace(" ", "").encode()
                + b"\n"
            )
        handle.write(tail)
    return path


def test_sequencer_stamps_seq_first_and_continues_past_its_lease_after_a_crash(tmp_path: Path) -> None:
    first = Sequencer(tmp_path)
    first.open()
    line = first.stamp('{"type":"tick","x":1}')
    assert json.loads(line) == {"seq": 1, "type": "tick", "x": 1} and line.startswith('{"seq":1,')
    # kill -9: nothing more written; the next run starts after the lease, never at a used seq
    second = Sequencer(tmp_path)
    second.open()
    assert second.agent_id == first.agent_id
    assert second.next_seq > 1 and second.next_seq >= LEASE


def test_sequencer_rebuilt_from_the_logs_when_its_identity_file_is_lost(tmp_path: Path) -> None:
    write_log(tmp_path, "streamhealth-20261130T000000Z-1.jsonl", range(1, 50_001))
    (tmp_path / IDENTITY_FILE).write_bytes(b'{"agent_id":"abc","seq_res')  # torn by a crash
    sequencer = Sequencer(tmp_path)
    sequencer.open()
    assert sequencer.next_seq == 50_001  # past every seq in the logs, whatever the lease said
    assert (tmp_path / (IDENTITY_FILE + ".corrupt")).exists()


def test_a_second_agent_on_the_same_folder_cannot_take_its_lock(tmp_path: Path) -> None:
    first, second = FolderLock(tmp_path), FolderLock(tmp_path)
    assert first.acquire()
    try:
        # flock is per open file description: a second open in this process conflicts like another process
        assert not second.acquire()
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_spool_reads_only_complete_lines_and_waits_for_the_rest(tmp_path: Path) -> None:
    write_log(tmp_path, "streamhealth-20261130T000000Z-1.jsonl", range(1, 4), tail=b'{"seq":4,"type":"ti')
    batch = LogSpool(tmp_path).read_batch(None, None, 100)
    assert [json.loads(line)["seq"] for line in batch.lines] == [1, 2, 3]
    assert batch.end is not None and batch.end.offset == sum(len(line) for line in batch.lines)
    assert batch.skipped == 0  # the half line may still be completed by the writer


def test_spool_skips_a_torn_tail_of_a_finished_file_and_goes_on_in_the_next(tmp_path: Path) -> None:
    write_log(tmp_path, "streamhealth-20261130T000000Z-9.jsonl", range(1, 3), tail=b'{"seq":3,"type":"ti')
    # restarted in the same second with a smaller pid: the name sorts first, the seqs decide
    write_log(tmp_path, "streamhealth-20261130T000000Z-1.jsonl", range(10_003, 10_005))
    batch = LogSpool(tmp_path).read_batch(None, None, 100)
    assert [json.loads(line)["seq"] for line in batch.lines] == [1, 2, 10_003, 10_004]
    assert batch.skipped == 1


def test_spool_resumes_at_the_cursor_without_resending_the_file(tmp_path: Path) -> None:
    write_log(tmp_path, "streamhealth-20261130T000000Z-1.jsonl", range(1, 11))
    spool = LogSpool(tmp_path)
    first = spool.read_batch(None, None, 4)
    assert first.end is not None
    rest = spool.read_batch(first.end, first.last_seq, 100)
    assert [json.loads(line)["seq"] for line in rest.lines] == list(range(5, 11))
    assert spool.count_lines(first.end) == 6


def test_spool_with_no_cursor_skips_what_the_collector_already_holds(tmp_path: Path) -> None:
    write_log(tmp_path, "streamhealth-20261130T000000Z-1.jsonl", range(1, 11))
    batch = LogSpool(tmp_path).read_batch(None, 7, 100)
    assert [json.loads(line)["seq"] for line in batch.lines] == [8, 9, 10]


def test_spool_skips_and_counts_lines_that_are_not_records(tmp_path: Path) -> None:
    path = write_log(tmp_path, "streamhealth-20261130T000000Z-1.jsonl", range(1, 3))
    with path.open("ab") as handle:
        handle.write(b'{"seq":3,"type":"ti{"seq":4}\n')  # two torn writes glued by a later newline
        handle.write(b'{"type":"tick"}\n')  # an agent older than shipping
    write_log(tmp_path, path.name, range(5, 6))
    batch = LogSpool(tmp_path).read_batch(None, None, 100)
    assert [json.loads(line)["seq"] for line in batch.lines] == [1, 2, 5]
    assert batch.skipped == 2


def test_cursor_survives_only_whole_and_a_corrupt_one_is_moved_aside(tmp_path: Path) -> None:
    save_cursor(tmp_path, Cursor("agent-a", Position("f.jsonl", 120), 42))
    assert load_cursor(tmp_path, "agent-a") == Cursor("agent-a", Position("f.jsonl", 120), 42)
    assert load_cursor(tmp_path, "agent-b") is None  # another identity's cursor is not ours
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
    (tmp_path / CURSOR_FILE).write_bytes(b'{"agent_id":"agent-a","file":"f.js')
    assert load_cursor(tmp_path, "agent-a") is None
    assert (tmp_path / (CURSOR_FILE + ".corrupt")).exists()

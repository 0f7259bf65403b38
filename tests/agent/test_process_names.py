"""The process-name table: real processes come and go; only new (or young) ones are read again."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from agent import process_names
from agent.process_names import ProcessNames

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses sh and sleep")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pids whose name was read from the OS (the real reader, counted)."""
    seen: list[int] = []
    real = process_names._name_of

    def counted(pid: int) -> str | None:
        seen.append(pid)
        return real(pid)

    monkeypatch.setattr(process_names, "_name_of", counted)
    yield seen


def _until(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_second_look_reads_only_the_processes_started_since(reads: list[int]) -> None:
    clock = Clock()
    names = ProcessNames(clock=clock)
    first = names.refresh()
    assert len(reads) == len(first) > 0
    reads.clear()
    child = subprocess.Popen(["sleep", "30"])
    try:
        clock.now += 1
        second = names.refresh()
        assert second[child.pid] == "sleep"
        assert child.pid in reads
        assert len(reads) < len(first)  # not everything again
    finally:
        child.kill()
        child.wait()
    clock.now += 1
    gone = names.matching(lambda name: "sleeper" if name == "sleep" else None)
    assert child.pid not in [process.pid for process, _ in gone]


def test_a_process_that_execs_soon_after_starting_is_seen_under_its_new_name() -> None:
    clock = Clock()
    names = ProcessNames(clock=clock)
    names.refresh()
    child = subprocess.Popen(["sh", "-c", "sleep 0.3; exec sleep 30"])
    try:
        clock.now += 1
        assert names.refresh()[child.pid] == "sh"
        _until(lambda: psutil.Process(child.pid).name() == "sleep")
        clock.now += 1  # still young: read again
        assert names.refresh()[child.pid] == "sleep"
    finally:
        child.kill()
        child.wait()


def test_every_name_is_read_again_after_the_full_refresh_interval(reads: list[int]) -> None:
    clock = Clock()
    names = ProcessNames(clock=clock, full_refresh_s=60)
    names.refresh()
    clock.now += 30
    reads.clear()
    names.refresh()
    settled = len(reads)
    clock.now += 31
    everything = len(names.refresh())
    assert len(reads) - settled >= everything > settled


def test_a_full_reading_made_elsewhere_is_adopted_and_matching_finds_kinds() -> None:
    names = ProcessNames(clock=Clock())
    child = subprocess.Popen(["sleep", "30"])
    try:
        names.replace({child.pid: "sleep"})
        found = names.matching(lambda name: "pause" if name == "sleep" else None)
        assert [(process.pid, kind) for process, kind in found if process.pid == child.pid] == [(child.pid, "pause")]
    finally:
        child.kill()
        child.wait()


def test_the_kernel_says_which_pid_it_handed_out_last() -> None:
    before = process_names._last_pid_created()
    if before is None:
        pytest.skip("no /proc/loadavg here: every look lists the process table")
    child = subprocess.Popen(["true"])
    child.wait()
    after = process_names._last_pid_created()
    assert after is not None and after != before


def test_no_listing_while_no_pid_was_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing is skipped only while the kernel's last pid is unchanged; a new pid means a new look."""
    last_pid = [1000]
    listings: list[int] = []
    real_pids = psutil.pids

    def counted_pids() -> list[int]:
        listings.append(1)
        return real_pids()

    monkeypatch.setattr(process_names, "_last_pid_created", lambda: last_pid[0])
    monkeypatch.setattr(process_names.psutil, "pids", counted_pids)
    clock = Clock()
    names = ProcessNames(clock=clock)
    names.refresh()
    assert len(listings) == 1
    clock.now += 2
    names.refresh()
    assert len(listings) == 1
    child = subprocess.Popen(["sleep", "30"])
    try:
        last_pid[0] = child.pid
        clock.now += 2
        assert names.refresh()[child.pid] == "sleep"
        assert len(listings) == 2
    finally:
        child.kill()
        child.wait()

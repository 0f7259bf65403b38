"""Two agents on one log folder (two streams on one PC, or a restart while the old agent drains):
retention never deletes a file that a live run holds, so both keep their runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agent.logs.locks import LOCKS_AVAILABLE
from agent.logs.writer import HealthLogWriter
from agent.models import RunStopped, utc_now
from tests.peers.wait import wait_until

_OTHER_AGENT = """
import sys, time
from pathlib import Path
from agent.logs.writer import HealthLogWriter
from agent.models import RunStopped, utc_now
writer = HealthLogWriter(Path(sys.argv[1]), started_at=utc_now(), pid=4242, max_bytes=10_000_000, keep_bytes=0)
writer.open()
writer.write_line(RunStopped(at=utc_now(), reason="b" * 50_000).model_dump_json())
print(writer.path, flush=True)
sys.stdin.readline()  # holds its run until told to stop
writer.write_line(RunStopped(at=utc_now(), reason="still here").model_dump_json())
writer.close()
"""


def test_retention_never_deletes_the_file_another_live_agent_is_writing(tmp_path: Path) -> None:
    assert LOCKS_AVAILABLE  # Linux: flock exists; Windows relies on open files being undeletable
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_AGENT, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        other_path = Path(other.stdout.readline().strip())
        assert other_path.is_file()
        finished = tmp_path / "streamhealth-20200101T000000Z-1.jsonl"  # an old run nobody holds
        finished.write_text(RunStopped(at=utc_now(), reason="a" * 50_000).model_dump_json() + "\n")
        time.sleep(0.01)  # the two old files must be older (mtime) than ours
        # Our agent starts with a budget smaller than the two old files: retention runs at once.
        ours = HealthLogWriter(tmp_path, started_at=utc_now(), pid=1, max_bytes=64 * 1024, keep_bytes=60_000)
        ours.open()
        for _ in range(5):  # and again at every rotation
            ours.write_line(RunStopped(at=utc_now(), reason="c" * 40_000).model_dump_json())
        ours.close()
        assert not finished.exists(), "a finished run over budget should still be deleted"
        assert other_path.exists(), "retention deleted the live run of the other agent"
    finally:
        if other.stdin is not None:
            other.stdin.write("\n")
            other.stdin.close()
        other.wait(timeout=10)
    assert other.returncode == 0
    assert other_path.read_text().count("\n") == 2  # its run kept both records


def test_a_run_file_is_free_to_delete_once_its_agent_stopped(tmp_path: Path) -> None:
    first = HealthLogWriter(tmp_path, started_at=utc_now(), pid=1, max_bytes=10_000_000, keep_bytes=0)
    first.open()
    first.write_line(RunStopped(at=utc_now(), reason="x" * 50_000).model_dump_json())
    first.close()
    second = HealthLogWriter(tmp_path, started_at=utc_now(), pid=2, max_bytes=10_000_000, keep_bytes=10_000)
    second.open()
    wait_until(lambda: not first.path.exists(), 2, "the stopped run's file to be deleted")
    second.close()

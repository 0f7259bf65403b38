"""OS locks on health log files, so retention never deletes a file that a live run (ours or another
agent's on the same folder) is still writing. `fcntl.flock` where it exists; on Windows there is no
flock, but there an open file cannot be deleted anyway, and retention reports the refusal and moves on.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCKS_AVAILABLE = fcntl is not None


def lock_held_file(fd: int) -> bool:
    """Take the exclusive lock a writer holds for as long as the file is its current one.
    False when another process already holds it (or the OS has no flock): writing goes on regardless."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def delete_unless_held(path: Path) -> bool:
    """Delete a log file unless a process holds its lock (a running agent is writing it).

    The lock is taken for the deletion itself, so a writer cannot take the file between the check
    and the unlink. Returns False when the file is held; raises OSError when it cannot be deleted."""
    if fcntl is None:
        path.unlink()  # Windows refuses to delete an open file: the caller reports that OSError
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)  # closing releases the lock

"""Where the agent's records go besides the event stream: the health log (stamped with seqs), the shipper
to a team collector, and the alert notifier. Opened at start, closed at stop, in the order that loses nothing.

The runtime decides what to emit; this module only owns the sinks' lifecycle, so the agent's core does
not grow with every new destination.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from agent.logs.writer import HealthLogWriter
from agent.models import LoggingStatus
from agent.settings import Settings
from agent.ship.sequence import FolderLock, Sequencer

if TYPE_CHECKING:
    from agent.notify.notifier import Notifier
    from agent.ship.shipper import Shipper

log = logging.getLogger(__name__)

SHIP_FLUSH_TIMEOUT_S = 3.0


class RecordSink(Protocol):
    """Anything that takes the agent's records as redacted JSON lines (log writer, shipper, ...)."""

    def write_line(self, line_json: str) -> None: ...


class Outputs:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sinks: list[RecordSink] = []
        self.log_writer: HealthLogWriter | None = None
        self.sequencer: Sequencer | None = None
        self.shipper: Shipper | None = None
        self.notifier: Notifier | None = None
        self._folder_lock: FolderLock | None = None
        self._log_open_error: str | None = None

    def open(self, *, started_at: datetime, pid: int) -> None:
        """Open the health log (seqs and shipping when this agent owns the folder) and the notifier."""
        if self.settings.logs.enabled:
            self._open_log(started_at, pid)
        if self.settings.notify.webhooks:
            from agent.notify.notifier import Notifier  # httpx and the formats only for those who notify

            self.notifier = Notifier(self.settings.notify)
            self.sinks.append(self.notifier)

    def background_work(self) -> list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]:
        """The tasks the outputs need while the agent runs (name, what starts it: started again if it ends)."""
        work: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
        if self.notifier is not None:
            work.append(("notify", self.notifier.run))
        if self.shipper is not None:
            work.append(("shipper", self.shipper.run))
        return work

    async def send_last_notifications(self) -> None:
        """Before the last record: what still waits for a webhook goes out once (bounded)."""
        if self.notifier is not None:
            await self.notifier.close()

    async def close(self) -> None:
        """After the last record: close the log, ship what is left (bounded), let go of the folder."""
        if self.log_writer is not None:
            self.log_writer.close()
        if self.shipper is not None:
            await self.shipper.flush(timeout_s=SHIP_FLUSH_TIMEOUT_S)
        if self._folder_lock is not None:
            self._folder_lock.release()

    def stamp(self, line: str) -> str:
        return self.sequencer.stamp(line) if self.sequencer is not None else line

    def logging_status(self) -> LoggingStatus:
        if self.log_writer is not None:
            return self.log_writer.status()
        if self._log_open_error is not None:
            return LoggingStatus(state="failing", error=self._log_open_error)
        return LoggingStatus(state="off")

    def _open_log(self, started_at: datetime, pid: int) -> None:
        logs = self.settings.logs
        writer = HealthLogWriter(
            logs.dir, started_at=started_at, pid=pid, max_bytes=logs.max_bytes, keep_bytes=logs.keep_bytes
        )
        try:
            # Before the writer opens: opening applies retention, which must already ask the shipper.
            logs.dir.mkdir(parents=True, exist_ok=True)
            self._start_sequencing(writer)
            writer.open()
        except OSError as exc:
            log.error("cannot open the health log in %s: %s; set logs.dir to a writable folder", logs.dir, exc.strerror)
            self._log_open_error = (
                f"cannot open the health log in {logs.dir}: {exc.strerror}; set logs.dir to a writable folder"
            )
            return
        self.log_writer = writer
        self.sinks.insert(0, writer)

    def _start_sequencing(self, writer: HealthLogWriter) -> None:
        """Stamp every record with a seq (the folder's owner only) and ship the log when [ship] is set."""
        directory = self.settings.logs.dir
        self._folder_lock = FolderLock(directory)
        if not self._folder_lock.acquire():
            log.warning(
                "another agent writes to %s: this agent's lines carry no seq and are not shipped; "
                "give each agent its own logs.dir",
                directory,
            )
            self._folder_lock = None
            return
        self.sequencer = Sequencer(directory)
        self.sequencer.open()
        writer.stamp_line = self.sequencer.stamp
        ship = self.settings.ship
        if ship.url is not None:
            from agent.ship.shipper import Shipper  # httpx and the shipper only for agents that ship

            sequencer = self.sequencer
            self.shipper = Shipper(ship, directory, sequencer.agent_id, seq_written=lambda: sequencer.next_seq - 1)
            writer.retention_guard = self.shipper
            self.sinks.append(self.shipper)

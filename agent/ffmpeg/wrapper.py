"""`streamhealth run -- ffmpeg ...`: run ffmpeg untouched except for `-progress`, and watch it.

Decision (documented in the command's help and docs/encoders.md): ffmpeg always writes its progress to the
wrapper (`-progress tcp://127.0.0.1:PORT` on a loopback port the wrapper listens on), never straight to
the agent: ffmpeg opens `-progress` once, at start, and exits if it cannot, and never reopens it. So the
wrapper relays whole blocks to the agent (`POST /api/v1/ffmpeg/progress?via=wrapper`, with the API token
if one is set) while an agent is there, reconnecting with a capped backoff when it starts later or
restarts (the TUI's embedded agent comes and goes); while no agent listens, it parses the blocks itself
and prints a line when ffmpeg falls behind (speed under 1) or drops frames. A summary ends the run.
Everything else is passed through: arguments, stdin/stdout/stderr, signals, and the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

import httpx

from agent.backoff import Backoff
from agent.errors import ProtocolError
from agent.ffmpeg.progress import ProgressParser, ProgressTracker
from agent.models import FfmpegSample
from agent.settings import Settings

PROBE_TIMEOUT_S = 1.0
FALLING_BEHIND_SPEED = 0.9  # slack: with -re the speed wobbles a little under 1.0, more so in the first seconds
WARN_EVERY_S = 5.0
EXIT_NOT_FOUND = 127


def agent_base_url(settings: Settings, port: int | None = None) -> str:
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port or settings.api.port}"


async def agent_takes_progress(base_url: str, token: str | None) -> bool:
    """Whether a streamhealth agent answers at `base_url` and takes ffmpeg progress."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
            response = await client.get(f"{base_url}/api/v1/ffmpeg/progress", headers=headers)
        return response.status_code == 200 and response.json().get("accepting") is True
    except (httpx.HTTPError, OSError, ValueError, AttributeError):
        return False


def with_progress(command: Sequence[str], progress_url: str) -> list[str]:
    """ffmpeg's arguments with `-progress URL -stats_period 1` added as global options, right after the program."""
    extra = ["-progress", progress_url]
    if "-stats_period" not in command:
        extra += ["-stats_period", "1"]
    return [command[0], *extra, *command[1:]]


class ProgressPrinter:
    """Local mode: one warning line when ffmpeg falls behind or drops frames (at most every few seconds)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tracker = ProgressTracker("wrapper")
        self.last: FfmpegSample | None = None
        self._warned_at = -float("inf")
        self._drops_seen = 0
        self.warnings = 0
        self.open_connections = 0
        self.idle = asyncio.Event()  # set while no progress connection is open
        self.idle.set()

    def block(self, sample: FfmpegSample, quiet: bool = False) -> None:
        """Note a sample; warn unless `quiet` (an agent is watching and will alert)."""
        self.last = sample
        now = time.monotonic()
        drops = sample.drop_frames_total or 0
        speed = sample.speed_ratio_10s if sample.speed_ratio_10s is not None else sample.speed_ratio
        behind = speed is not None and speed < FALLING_BEHIND_SPEED and (sample.out_time_s or 0) >= 2
        if not quiet and (behind or drops > self._drops_seen) and now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            self.warnings += 1
            reason = f"speed {speed:.2f}x (the encoder or the uplink cannot keep up)" if behind else ""
            if drops > self._drops_seen:
                reason = f"{reason}; " if reason else ""
                reason += f"{drops - self._drops_seen} frames dropped"
            print(f"streamhealth: ffmpeg is falling behind: {reason}", file=self.out, flush=True)
        self._drops_seen = max(self._drops_seen, drops)

    def summary(self) -> str | None:
        sample = self.last
        if sample is None:
            return None
        speed = f"{sample.speed_ratio:.2f}x" if sample.speed_ratio is not None else "n/a"
        return (
            f"streamhealth: ffmpeg wrote {sample.frame or 0} frames ({sample.out_time_s or 0:.1f} s of media), "
            f"speed {speed}, dropped {sample.drop_frames_total or 0}, duplicated {sample.dup_frames_total or 0}"
            + ("" if sample.ended else "; it ended without progress=end")
        )


class BlockSplitter:
    """Cuts the raw progress bytes into whole blocks, so a relay that reconnects starts on a boundary."""

    def __init__(self) -> None:
        self._pending = b""
        self._block: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        blocks = []
        for line in lines:
            self._block.append(line + b"\n")
            if line.startswith(b"progress="):
                blocks.append(b"".join(self._block))
                self._block = []
        return blocks


class AgentRelay:
    """Forwards ffmpeg's progress blocks to an agent over one chunked POST, reconnecting with a capped
    backoff when the agent is not there (started later, restarted, or the TUI with its embedded agent was
    closed and opened again). Blocks that arrive while no agent listens are dropped: only fresh ones matter."""

    QUEUE_BLOCKS = 32
    FIRST_RETRY_S = 0.5
    MAX_BACKOFF_S = 4.0  # one loopback GET per retry: cheap, and a restarted agent is picked up soon

    def __init__(self, base_url: str, token: str | None, out: TextIO) -> None:
        self.base_url = base_url
        self.token = token
        self.out = out
        self.connected = False
        self.sessions = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.QUEUE_BLOCKS)
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.first_probe_done = asyncio.Event()
        self._delivered = False
        self._announced = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="progress relay")

    def offer(self, block: bytes) -> None:
        if not self.connected:
            return
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(block)

    async def close(self, timeout_s: float = 3.0) -> None:
        self._closing = True
        self._wake.set()
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # ends the POST body, so the agent sees the last block and the end
        if self._task is not None:
            await asyncio.wait([self._task], timeout=timeout_s)
            self._task.cancel()

    async def _run(self) -> None:
        backoff = Backoff(self.FIRST_RETRY_S, self.MAX_BACKOFF_S)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = f"{self.base_url}/api/v1/ffmpeg/progress"
        while not self._closing:
            found = await agent_takes_progress(self.base_url, self.token)
            self.first_probe_done.set()
            if found:
                backoff.reset()
                self.connected = True
                self.sessions += 1
                if not self._announced:
                    self._announced = True
                    print(
                        f"streamhealth: ffmpeg progress goes to the agent at {self.base_url}", file=self.out, flush=True
                    )
                lost = "the upload ended"
                try:
                    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=10.0), trust_env=False) as client:
                        response = await client.post(
                            url, params={"via": "wrapper"}, headers=headers, content=self._body()
                        )
                    lost = f"the agent answered {response.status_code}"
                    if response.status_code in (400, 401, 403, 404):
                        # Retrying would be refused the same way: say why once and watch here from now on.
                        self.connected = False
                        self._drain()
                        print(
                            f"streamhealth: the agent refuses ffmpeg progress ({_detail(response)}); watching here",
                            file=self.out,
                            flush=True,
                        )
                        return
                except httpx.HTTPError as exc:
                    lost = type(exc).__name__
                if not self._closing and self._delivered:  # one line per loss, not one per failed retry
                    print(
                        f"streamhealth: lost the agent ({lost}); watching ffmpeg here, reconnecting",
                        file=self.out,
                        flush=True,
                    )
                self._delivered = False
                self.connected = False
                self._drain()
            if self._closing:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff.next_s()):
                    await self._wake.wait()

    async def _body(self) -> AsyncIterator[bytes]:
        while (block := await self._queue.get()) is not None:
            yield block
            self._delivered = True
            self._announced = False  # after a loss, say so again when an agent takes over

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return f"HTTP {response.status_code}: {detail}" if isinstance(detail, str) else f"HTTP {response.status_code}"


async def _serve_local_progress(printer: ProgressPrinter, relay: AgentRelay | None) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser, splitter = ProgressParser(), BlockSplitter()
        printer.open_connections += 1
        printer.idle.clear()
        try:
            while data := await reader.read(65536):  # ffmpeg keeps the socket until it exits
                blocks = parser.feed(data)
                raw_blocks = splitter.feed(data)
                agent_listens = relay is not None and relay.connected
                for block in blocks:
                    printer.block(printer.tracker.update(time.monotonic(), block), quiet=agent_listens)
                if relay is not None:
                    for raw in raw_blocks:
                        relay.offer(raw)
        except ProtocolError as exc:
            print(f"streamhealth: ignoring the progress connection: {exc}", file=printer.out, flush=True)
        finally:
            printer.open_connections -= 1
            if printer.open_connections == 0:
                printer.idle.set()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    return server, port


async def run_wrapped(
    command: Sequence[str], settings: Settings, *, use_agent: bool = True, out: TextIO = sys.stderr
) -> int:
    """Run ffmpeg with its progress relayed to the agent (or watched here); returns ffmpeg's exit code."""
    if not command:
        print("streamhealth run: give the ffmpeg command after --, e.g. streamhealth run -- ffmpeg -i ...", file=out)
        return 2
    if "-progress" in command:
        print("streamhealth: the command has its own -progress: running it unchanged", file=out, flush=True)
        return await _run_child(list(command), out)
    printer = ProgressPrinter(out)
    token = settings.api.token.get_secret_value() if settings.api.token else None
    relay = AgentRelay(agent_base_url(settings), token, out) if use_agent else None
    server, port = await _serve_local_progress(printer, relay)
    if relay is not None:
        relay.start()
        # Give a running agent a moment to be found, so the first blocks already go there.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROBE_TIMEOUT_S + 0.5):
                await relay.first_probe_done.wait()
    try:
        return await _run_child(with_progress(command, f"tcp://127.0.0.1:{port}"), out)
    finally:
        server.close()
        # ffmpeg has exited; let the progress connection deliver its last bytes (progress=end) first.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await printer.idle.wait()
        if relay is not None:
            await relay.close()
        if (summary := printer.summary()) is not None:
            print(summary, file=out, flush=True)


async def _run_child(command: list[str], out: TextIO) -> int:
    try:
        child = await asyncio.create_subprocess_exec(*command)
    except FileNotFoundError:
        print(f"streamhealth run: {command[0]!r} not found: install ffmpeg or give its full path", file=out)
        return EXIT_NOT_FOUND
    except PermissionError:
        print(f"streamhealth run: {command[0]!r} is not executable", file=out)
        return EXIT_NOT_FOUND
    loop = asyncio.get_running_loop()
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if os.name == "posix" else ()
    installed = []
    for signum in forwarded:
        # ffmpeg decides what a signal means (it finishes the file on the first SIGINT): we only pass it on.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, _forward, child, signum)
            installed.append(signum)
    try:
        returncode = await child.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return 128 - returncode if returncode < 0 else returncode


def _forward(child: asyncio.subprocess.Process, signum: int) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

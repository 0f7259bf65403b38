"""`streamhealth run -- ffmpeg ...`: run ffmpeg untouched except for `-progress`, and watch it.

Decision (documented in the command's help): when an agent answers on the configured API address, the
wrapper points ffmpeg's `-progress` straight at the agent's endpoint (`POST /api/v1/ffmpeg/progress`), so
the agent, its rules, log and TUI see the encoder with no process in between. When no agent runs (or the
API needs a token, which ffmpeg cannot send with -progress), the wrapper listens on a loopback TCP port,
gives ffmpeg `-progress tcp://127.0.0.1:PORT`, parses the blocks itself and prints a warning line when
ffmpeg falls behind (speed under 1) or drops frames, and a summary at the end.
Everything else is passed through: arguments, stdin/stdout/stderr, signals, and the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import httpx

from agent.errors import ProtocolError
from agent.ffmpeg.progress import ProgressParser, ProgressTracker
from agent.models import FfmpegSample
from agent.settings import Settings

PROBE_TIMEOUT_S = 1.0
FALLING_BEHIND_SPEED = 0.97  # a little slack: ffmpeg's speed wobbles around 1.0 with -re
WARN_EVERY_S = 5.0
EXIT_NOT_FOUND = 127


@dataclass(frozen=True)
class Plan:
    command: list[str]
    mode: str  # "agent", "local" or "passthrough"
    note: str | None = None


def agent_base_url(settings: Settings, port: int | None = None) -> str:
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port or settings.api.port}"


async def agent_answers(base_url: str, token: str | None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
            response = await client.get(f"{base_url}/api/v1/health", headers=headers)
    except (httpx.HTTPError, OSError):
        return False
    return response.status_code == 200


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

    def block(self, sample: FfmpegSample) -> None:
        self.last = sample
        now = time.monotonic()
        drops = sample.drop_frames_total or 0
        speed = sample.speed_ratio_10s if sample.speed_ratio_10s is not None else sample.speed_ratio
        behind = speed is not None and speed < FALLING_BEHIND_SPEED and (sample.out_time_s or 0) >= 2
        if (behind or drops > self._drops_seen) and now - self._warned_at >= WARN_EVERY_S:
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


async def _serve_local_progress(printer: ProgressPrinter) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = ProgressParser()
        try:
            while data := await reader.read(65536):  # ffmpeg keeps the socket until it exits
                for block in parser.feed(data):
                    printer.block(printer.tracker.update(time.monotonic(), block))
        except ProtocolError as exc:
            print(f"streamhealth: ignoring the progress connection: {exc}", file=printer.out, flush=True)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    return server, port


async def run_wrapped(
    command: Sequence[str], settings: Settings, *, use_agent: bool = True, out: TextIO = sys.stderr
) -> int:
    """Run ffmpeg with progress going to the agent (or printed here); returns ffmpeg's exit code."""
    if not command:
        print("streamhealth run: give the ffmpeg command after --, e.g. streamhealth run -- ffmpeg -i ...", file=out)
        return 2
    printer = ProgressPrinter(out)
    server: asyncio.Server | None = None
    token = settings.api.token.get_secret_value() if settings.api.token else None
    base = agent_base_url(settings)
    if "-progress" in command:
        plan = Plan(list(command), "passthrough", "the command has its own -progress: running it unchanged")
    elif use_agent and token is None and await agent_answers(base, None):
        plan = Plan(with_progress(command, f"{base}/api/v1/ffmpeg/progress?via=wrapper"), "agent")
    else:
        server, port = await _serve_local_progress(printer)
        note = None
        if use_agent and token is not None and await agent_answers(base, token):
            note = "the agent's API needs a token, which ffmpeg cannot send: watching ffmpeg here instead"
        plan = Plan(with_progress(command, f"tcp://127.0.0.1:{port}"), "local", note)
    if plan.note:
        print(f"streamhealth: {plan.note}", file=out, flush=True)
    if plan.mode == "agent":
        print(f"streamhealth: ffmpeg progress goes to the agent at {base}", file=out, flush=True)
    try:
        return await _run_child(plan.command, out)
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
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

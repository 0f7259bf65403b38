"""The terminal side of `streamhealth preflight` (Rich), loaded only when the command runs.

Starts a temporary agent in this process (its sources, no HTTP API), watches it for the window while
the bandwidth test runs, and shows a live checklist; then the verdict and the recommended settings.
`--json` prints only the report. Exit code: 0 GO, 1 GO_WITH_WARNINGS, 2 NO_GO, 3 when the check
itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agent.errors import StreamHealthError
from agent.models import JobFinished, PreflightCheck, PreflightReport, utc_now
from agent.preflight import run_preflight
from agent.redact import redact
from agent.runtime import Agent
from agent.settings import Settings

EXIT_BY_VERDICT = {"GO": 0, "GO_WITH_WARNINGS": 1, "NO_GO": 2}
EXIT_COULD_NOT_RUN = 3
_STATUS_STYLE = {
    "pass": "[green]pass[/]",
    "warn": "[yellow]warn[/]",
    "fail": "[bold red]FAIL[/]",
    "skipped": "[dim]skip[/]",
}
_VERDICT_STYLE = {"GO": "bold green", "GO_WITH_WARNINGS": "bold yellow", "NO_GO": "bold red"}


class _Checklist:
    """The live view: the current step, then one row per check as the checks settle."""

    def __init__(self) -> None:
        self.step = "starting"
        self.fraction: float | None = 0.0
        self.checks: list[PreflightCheck] = []
        self.live: Live | None = None

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        self.step = f"{step}: {redact(message)}" if message else step
        if fraction is not None:
            self.fraction = fraction
        self._refresh()

    def show(self, checks: list[PreflightCheck]) -> None:
        self.checks = checks
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.render())

    def render(self) -> Group:
        percent = "" if self.fraction is None else f" {self.fraction:.0%}"
        return Group(Text(f"preflight{percent} — {self.step}", style="bold"), checks_table(self.checks))


class _Silent:
    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        return None


def checks_table(checks: list[PreflightCheck]) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("measured")
    table.add_column("what it means / what to do")
    for check in checks:
        advice = check.message + (f" — [italic]{check.suggestion}[/]" if check.suggestion else "")
        table.add_row(check.name, _STATUS_STYLE[check.status], redact(check.value or ""), redact(advice))
    return table


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=True)
    if not args.verbose:
        # The sources' start-up chatter would tear the live checklist; problems still show as checks.
        logging.getLogger("agent").setLevel(logging.WARNING)
    live_view = not args.json and console.is_terminal
    checklist = _Checklist()
    try:
        if live_view:
            with Live(checklist.render(), console=console, refresh_per_second=4, transient=True) as live:
                checklist.live = live
                report = asyncio.run(_run(settings, args, checklist, checklist.show))
        else:
            report = asyncio.run(_run(settings, args, _Silent(), None))
    except (StreamHealthError, OSError) as exc:
        print(f"streamhealth: the preflight could not run: {redact(str(exc))}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    if args.json:
        print(redact(report.model_dump_json(indent=2)))
    else:
        print_report(Console(), report)
    return EXIT_BY_VERDICT[report.verdict]


async def _run(
    settings: Settings,
    args: argparse.Namespace,
    reporter: _Checklist | _Silent,
    on_checks: Callable[[list[PreflightCheck]], None] | None,
) -> PreflightReport:
    agent = Agent(settings)
    await agent.start()
    try:
        report = await run_preflight(
            agent,
            reporter=reporter,
            platform=args.platform,
            duration_s=max(1.0, args.duration),
            bandwidth=not args.no_bandwidth,
            on_checks=on_checks,
        )
        # The report goes to the health log like an API preflight's does.
        agent.emit(
            JobFinished(
                at=utc_now(),
                job="preflight",
                job_id=uuid.uuid4().hex[:12],
                ok=True,
                report=report.model_dump(mode="json"),
            )
        )
        return report
    finally:
        await agent.stop("preflight finished")


def print_report(console: Console, report: PreflightReport) -> None:
    console.print(checks_table(report.checks))
    console.print(Text(f"verdict: {report.verdict.replace('_', ' ')}", style=_VERDICT_STYLE[report.verdict]))
    rec = report.recommended
    parts = [
        f"video {rec.video_bitrate_kbps} kbps" if rec.video_bitrate_kbps else None,
        f"audio {rec.audio_bitrate_kbps} kbps" if rec.audio_bitrate_kbps else None,
        f"{rec.resolution}" if rec.resolution else None,
        f"{rec.fps} fps" if rec.fps else None,
        f"keyframes every {rec.keyframe_interval_s:g} s" if rec.keyframe_interval_s else None,
        f"encoder: {rec.video_encoder}" if rec.video_encoder else None,
    ]
    console.print(f"recommended for {report.platform}: " + ", ".join(part for part in parts if part))

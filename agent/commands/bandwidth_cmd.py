"""`streamhealth bandwidth`: run one bandwidth test in the terminal, with a progress bar or as JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.bandwidth import BACKENDS, run_bandwidth_test
from agent.models import BandwidthResult
from agent.redact import redact
from agent.settings import Settings

HELP = "measure upload bandwidth (speedtest, http server, or the RTMP ingest itself) and recommend a video bitrate"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("bandwidth", parents=[common], help=HELP, description=HELP + ".")
    parser.add_argument("--backend", choices=BACKENDS, help="default: bandwidth.backend (http)")
    parser.add_argument(
        "--url",
        metavar="URL",
        help="http: the server's base URL; speedtest: a Speedtest Mini URL; rtmp: the ingest URL with key",
    )
    parser.add_argument("--duration", type=float, metavar="S", help="seconds of upload measurement")
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")
    parser.set_defaults(command=run)


class _TerminalReporter:
    """Progress on stderr: a Rich bar in a terminal, plain lines otherwise, nothing with --json."""

    def __init__(self, console: Console, progress: Progress | None, quiet: bool) -> None:
        self.console = console
        self.progress = progress
        self.quiet = quiet
        self.task = progress.add_task("starting", total=1.0) if progress is not None else None

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        if step == "warning":  # said before the test starts, whatever the output mode
            self.console.print(f"[bold yellow]warning:[/] {redact(message)}")
            return
        if self.progress is not None and self.task is not None:
            description = f"{step} {redact(message)}".strip()
            self.progress.update(self.task, description=description, completed=fraction)
        elif not self.quiet and message:
            self.console.print(f"{step}: {redact(message)}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    backend = args.backend or settings.bandwidth.backend
    console = Console(stderr=True)
    progress = None
    if not args.json and console.is_terminal:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
    reporter = _TerminalReporter(console, progress, quiet=args.json)

    async def test() -> BandwidthResult:
        return await run_bandwidth_test(
            settings, backend=backend, reporter=reporter, url=args.url, duration_s=args.duration
        )

    if progress is not None:
        with progress:
            result = asyncio.run(test())
    else:
        result = asyncio.run(test())
    if args.json:
        print(redact(result.model_dump_json(indent=2)))
    else:
        _print_result(Console(), result)
    return 0 if result.ok else 1


def _mbps(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f} Mbit/s"


def _print_result(console: Console, result: BandwidthResult) -> None:
    if result.upload_bps is None:
        print(f"streamhealth: bandwidth test failed: {redact(result.error or 'nothing was measured')}", file=sys.stderr)
        return
    table = Table(title=f"bandwidth test ({result.backend}, {result.target})", show_header=False)
    table.add_row("sustained upload", _mbps(result.upload_bps))
    table.add_row("peak upload (1 s)", _mbps(result.upload_peak_bps))
    if result.download_bps is not None:
        table.add_row("download", _mbps(result.download_bps))
    if result.latency_ms is not None:
        table.add_row("latency", f"{result.latency_ms:.1f} ms")
    if result.latency_under_load_ms is not None:
        table.add_row("latency under load", f"{result.latency_under_load_ms:.1f} ms")
    if result.jitter_ms is not None:
        table.add_row("jitter", f"{result.jitter_ms:.1f} ms")
    table.add_row("measured", f"{result.duration_s:.1f} s, {result.bytes_sent / 1e6:.1f} MB sent")
    if result.recommended_video_kbps is not None:
        table.add_row(
            "recommended video bitrate",
            f"[bold]{result.recommended_video_kbps} kbit/s[/] (x{result.headroom_ratio:g} headroom, "
            f"minus {result.audio_bitrate_kbps} kbit/s audio)",
        )
    console.print(table)
    if result.error:
        print(f"streamhealth: {redact(result.error)}", file=sys.stderr)

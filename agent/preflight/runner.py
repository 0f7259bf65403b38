"""Running a preflight: watch the agent's snapshots for a window while the bandwidth test runs, then
turn what was seen into checks, a verdict and recommended settings (checks/).

The same coroutine serves the CLI (a temporary in-process agent) and the API (the running agent, as a
job). It never measures anything itself: the agent's sources and the bandwidth test do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from agent.errors import ConfigError
from agent.jobs import ProgressReporter
from agent.models import BandwidthResult, PreflightCheck, PreflightReport, utc_now
from agent.platforms import load_preset
from agent.preflight.checks import Observation, recommend, run_checks, verdict_of
from agent.preflight.checks.observation import stream_is_live
from agent.redact import redact
from agent.rules.derived import stream_target
from agent.rules.playbook import load_playbook
from agent.runtime import Agent

DEFAULT_DURATION_S = 15.0
ENCODER_SOURCES = ("obs", "ffmpeg")
ChecksCallback = Callable[[list[PreflightCheck]], None]


class _Share:
    """Forwards the bandwidth test's progress as a step of the preflight."""

    def __init__(self, reporter: ProgressReporter, on_fraction: Callable[[float], None]) -> None:
        self.reporter = reporter
        self.on_fraction = on_fraction

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        if fraction is not None:
            self.on_fraction(fraction)
        self.reporter.report(f"bandwidth {step}", None, message)


async def run_preflight(
    agent: Agent,
    *,
    reporter: ProgressReporter,
    platform: str | None = None,
    duration_s: float = DEFAULT_DURATION_S,
    bandwidth: bool = True,
    on_checks: ChecksCallback | None = None,
) -> PreflightReport:
    settings = agent.settings
    preset = load_preset(platform or settings.platform)
    observation = Observation(
        snapshots=[],
        preset=preset,
        playbook=load_playbook(settings.rules.playbook_file),
        target=stream_target(settings),
        encoder_sources=tuple(s.name for s in agent.sources if s.name in ENCODER_SOURCES),
    )
    started_at = utc_now()
    bandwidth_fraction = 0.0 if bandwidth else 1.0

    def bandwidth_progress(fraction: float) -> None:
        nonlocal bandwidth_fraction
        bandwidth_fraction = fraction

    test: asyncio.Task[BandwidthResult] | None = None
    if bandwidth and stream_is_live(agent.snapshot):
        observation.live_uplink = True
        reporter.report("bandwidth", None, "a stream is live: judging the upload from its own connection")
    elif bandwidth:
        from agent.bandwidth import run_bandwidth_test

        test = asyncio.create_task(
            run_bandwidth_test(
                settings, backend=settings.bandwidth.backend, reporter=_Share(reporter, bandwidth_progress)
            ),
            name="preflight:bandwidth",
        )
    else:
        observation.bandwidth_skipped = "--no-bandwidth: the upload was not measured"

    try:
        await _observe(agent, observation, duration_s, reporter, lambda: bandwidth_fraction, on_checks)
        if test is not None:
            reporter.report("bandwidth", None, "waiting for the bandwidth test to finish")
            try:
                observation.bandwidth = await test
            except ConfigError as exc:
                observation.bandwidth_skipped = f"{redact(str(exc))} (or run preflight with --no-bandwidth)"
    finally:
        if test is not None and not test.done():
            test.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await test

    checks = run_checks(observation)
    if on_checks is not None:
        on_checks(checks)
    report = PreflightReport(
        platform=preset.name,
        started_at=started_at,
        finished_at=utc_now(),
        verdict=verdict_of(checks),
        checks=checks,
        recommended=recommend(observation, checks),
        bandwidth=observation.bandwidth,
    )
    reporter.report("done", 1.0, f"verdict: {report.verdict}")
    return report


async def _observe(
    agent: Agent,
    observation: Observation,
    duration_s: float,
    reporter: ProgressReporter,
    bandwidth_fraction: Callable[[], float],
    on_checks: ChecksCallback | None,
) -> None:
    """Collect one snapshot per tick for the window; show the instant checks as they settle."""
    interval_s = agent.settings.sampling.interval_s
    started = time.monotonic()
    last_taken = None
    while True:
        elapsed = time.monotonic() - started
        snapshot = agent.snapshot
        if snapshot.taken_at != last_taken:
            observation.snapshots.append(snapshot)
            last_taken = snapshot.taken_at
            if on_checks is not None:
                on_checks(run_checks(observation, include_window=False))
        window = min(1.0, elapsed / duration_s) if duration_s > 0 else 1.0
        reporter.report(
            "observing",
            min(window, bandwidth_fraction()) * 0.95,
            f"watching the system, network and encoder ({min(elapsed, duration_s):.0f} / {duration_s:g} s)",
        )
        if elapsed >= duration_s:
            return
        await asyncio.sleep(min(interval_s, max(0.05, duration_s - elapsed)))

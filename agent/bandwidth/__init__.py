"""Bandwidth tests on demand: how much upload the link (or the ingest itself) sustains.

One entry point, `run_bandwidth_test`, used by the CLI, the API job and preflight. Each backend lives
in its own module (`http_backend`, `speedtest_backend`, `rtmp_backend`) and only moves and counts
bytes; `result` turns the counts into the shared `BandwidthResult`.

Failures of the measurement itself (unreachable server, refused key, stalled transfer, deadline)
come back as a result with `ok=False` and a reason that says what to do next; only a configuration
that makes the test impossible to start (no server configured, a malformed URL) raises `ConfigError`.
"""

from __future__ import annotations

import asyncio
import logging

from agent.bandwidth.result import failed_result
from agent.errors import ConfigError
from agent.jobs import ProgressReporter
from agent.models import BandwidthResult, utc_now
from agent.models.reports import BandwidthBackend
from agent.redact import redact
from agent.settings import Settings

log = logging.getLogger(__name__)

BACKENDS: tuple[BandwidthBackend, ...] = ("speedtest", "http", "rtmp")


async def run_bandwidth_test(
    settings: Settings,
    *,
    backend: str,
    reporter: ProgressReporter,
    url: str | None = None,
    duration_s: float | None = None,
) -> BandwidthResult:
    """Run one bandwidth test and return its result (never raises for a failed measurement).

    `url` overrides the backend's configured server (http: base URL of a LibreSpeed-style server;
    speedtest: a Speedtest Mini URL; rtmp: the ingest URL with key). `duration_s` overrides
    `bandwidth.duration_s`. The whole test is bounded by `bandwidth.deadline_s`; cancelling the
    calling task stops it at once.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown bandwidth backend {backend!r}: use one of {', '.join(BACKENDS)}")
    chosen: BandwidthBackend = backend
    duration = duration_s if duration_s is not None else settings.bandwidth.duration_s
    if duration <= 0:
        raise ConfigError("the test duration must be more than 0 seconds")
    started_at = utc_now()
    deadline_s = max(settings.bandwidth.deadline_s, duration * 2 + 10)
    target = "?"
    try:
        async with asyncio.timeout(deadline_s):
            if chosen == "http":
                from agent.bandwidth import http_backend

                target = http_backend.target_of(settings, url)
                return await http_backend.run(settings, reporter=reporter, url=url, duration_s=duration)
            if chosen == "speedtest":
                from agent.bandwidth import speedtest_backend

                target = speedtest_backend.target_of(settings, url)
                return await speedtest_backend.run(settings, reporter=reporter, url=url, duration_s=duration)
            from agent.bandwidth import rtmp_backend

            target = rtmp_backend.target_of(settings, url)
            return await rtmp_backend.run(settings, reporter=reporter, url=url, duration_s=duration)
    except TimeoutError:
        error = f"the {chosen} test did not finish within its deadline of {deadline_s:g} s (bandwidth.deadline_s)"
        log.warning("%s", error)
        return failed_result(settings.bandwidth, backend=chosen, target=target, started_at=started_at, error=error)
    except OSError as exc:  # a transfer failure a backend did not translate: still a result, not a crash
        error = redact(f"{chosen} test failed: {exc}")
        return failed_result(settings.bandwidth, backend=chosen, target=target, started_at=started_at, error=error)


__all__ = ["BACKENDS", "run_bandwidth_test"]

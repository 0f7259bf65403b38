"""The http backend: upload over several parallel streaming POSTs, download, and latency under load.

Talks to any LibreSpeed-style server (`/backend/empty.php` as upload sink and ping, `/backend/garbage.php`
for download) such as `streamhealth bandwidth-server`. Upload is counted as the body is handed to the
connection; the first seconds (socket buffers filling) are left out of the sustained figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import httpx

from agent.bandwidth.acked import AckedSockets, recording_transport
from agent.bandwidth.result import (
    ByteMeter,
    build_result,
    failed_result,
    jitter_of,
    percentile,
    ramp_up_windows,
    sample_windows,
)
from agent.errors import ConfigError
from agent.jobs import ProgressReporter
from agent.models import BandwidthResult, utc_now
from agent.redact import redact
from agent.settings import Settings

CHUNK = os.urandom(64 * 1024)
REQUEST_BYTES = 32 * 1024 * 1024  # one POST body; a new request follows when it is done
PING_PATH = "/backend/empty.php"
UPLOAD_PATH = "/backend/empty.php"
DOWNLOAD_PATH = "/backend/garbage.php"
IDLE_PINGS = 4
LOAD_PING_INTERVAL_S = 0.5


def base_url_of(settings: Settings, url: str | None) -> str:
    base = url or settings.bandwidth.http_url
    if not base:
        raise ConfigError(
            "the http bandwidth test needs a server: pass --url http://HOST:PORT (for example a "
            "`streamhealth bandwidth-server`) or set bandwidth.http_url"
        )
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the http bandwidth server must be an http:// or https:// URL, got {redact(base)!r}")
    return base.rstrip("/")


def target_of(settings: Settings, url: str | None) -> str:
    parts = urlsplit(base_url_of(settings, url))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _describe(exc: BaseException, target: str) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no answer from {target} (connection timed out): check the address and that the server runs"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {target}: {exc or 'connection failed'}; check the address and that the server runs"
    if isinstance(exc, httpx.TimeoutException):
        return f"{target} stopped answering (timed out)"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{target} answered HTTP {exc.response.status_code}: is it a LibreSpeed-style server?"
    return f"{target}: {type(exc).__name__}: {exc}"


async def _ping(client: httpx.AsyncClient, base: str) -> float:
    started = time.perf_counter()
    response = await client.get(f"{base}{PING_PATH}", params={"r": str(time.time_ns())})
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def _upload_worker(client: httpx.AsyncClient, base: str, meter: ByteMeter, stop: asyncio.Event) -> None:
    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent < REQUEST_BYTES and not stop.is_set():
            yield CHUNK
            meter.add(len(CHUNK))
            sent += len(CHUNK)

    while not stop.is_set():
        response = await client.post(f"{base}{UPLOAD_PATH}", content=body())
        response.raise_for_status()


async def _download_worker(client: httpx.AsyncClient, base: str, meter: ByteMeter, stop: asyncio.Event) -> None:
    while not stop.is_set():
        async with client.stream("GET", f"{base}{DOWNLOAD_PATH}", params={"ckSize": "100"}) as response:
            response.raise_for_status()
            async for chunk in response.aiter_raw():
                meter.add(len(chunk))
                if stop.is_set():
                    return


async def _measure(
    workers: list[asyncio.Task[None]],
    meter: ByteMeter,
    duration_s: float,
    on_window: Callable[[float, float], None] | None,
    refresh: Callable[[], None] | None = None,
) -> BaseException | None:
    """Sample `meter` for `duration_s` while `workers` run; stop early if they all failed."""
    sampler = asyncio.create_task(sample_windows(meter, duration_s, on_window, refresh))
    try:
        while not sampler.done():
            await asyncio.wait([sampler, *workers], return_when=asyncio.FIRST_COMPLETED)
            failed = [task for task in workers if task.done() and not task.cancelled() and task.exception()]
            if len(failed) == len(workers):
                sampler.cancel()
                return failed[0].exception()
            workers = [task for task in workers if not task.done()] or workers
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    return None


async def _stop(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stall_error(windows: list[float], skip: int, target: str) -> str | None:
    steady = windows[skip:]
    if steady and sum(1 for rate in steady if rate <= 0) * 2 > len(steady):
        return f"{target} stopped accepting data during the test (stalled); the figure is not trustworthy"
    return None


async def run(settings: Settings, *, reporter: ProgressReporter, url: str | None, duration_s: float) -> BandwidthResult:
    config = settings.bandwidth
    base = base_url_of(settings, url)
    target = target_of(settings, url)
    started_at = utc_now()
    timeout = httpx.Timeout(10.0, connect=5.0)
    limits = httpx.Limits(max_connections=config.http_connections + 4, max_keepalive_connections=8)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, http2=False) as client:
        reporter.report("latency", 0.02, f"pinging {target}")
        latencies: list[float] = []
        try:
            for _ in range(IDLE_PINGS):
                latencies.append(await _ping(client, base))
        except (httpx.HTTPError, OSError) as exc:
            return failed_result(
                config, backend="http", target=target, started_at=started_at, error=_describe(exc, target)
            )

        download_bps: float | None = None
        download_s = max(1.0, min(5.0, duration_s / 3)) if config.http_download else 0.0
        total_s = download_s + duration_s
        if config.http_download:
            reporter.report("download", 0.05, "measuring download")
            down_meter, stop = ByteMeter(), asyncio.Event()
            workers = [asyncio.create_task(_download_worker(client, base, down_meter, stop)) for _ in range(2)]
            try:
                await _measure(workers, down_meter, download_s, None)
            finally:
                await _stop(workers, stop)
            down_windows = down_meter.windows_bps()
            if down_windows:
                download_bps = percentile(down_windows[1:] or down_windows, 50)

        reporter.report("upload", download_s / total_s, f"uploading over {config.http_connections} connections")
        meter, stop = ByteMeter(), asyncio.Event()
        written = ByteMeter()  # what we handed to the sockets: the fallback where TCP_INFO is missing
        acked = AckedSockets()
        upload_client = httpx.AsyncClient(timeout=timeout, transport=recording_transport(acked, limits))

        def refresh() -> None:
            total = acked.total()
            meter.set_total(total if total is not None else written.total)

        load_latencies: list[float] = []

        async def ping_under_load() -> None:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError, OSError):
                    load_latencies.append(await _ping(client, base))
                await asyncio.sleep(LOAD_PING_INTERVAL_S)

        def on_window(elapsed_s: float, rate_bps: float) -> None:
            fraction = min(0.99, (download_s + elapsed_s) / total_s)
            reporter.report("upload", fraction, f"{rate_bps / 1e6:.1f} Mbit/s")

        workers = [
            asyncio.create_task(_upload_worker(upload_client, base, written, stop))
            for _ in range(config.http_connections)
        ]
        pinger = asyncio.create_task(ping_under_load())
        try:
            failure = await _measure(workers, meter, duration_s, on_window, refresh)
        finally:
            acked.discard_unsent_on_close()
            await _stop([*workers, pinger], stop)
            await upload_client.aclose()

    windows = meter.windows_bps()
    skip = ramp_up_windows(config, duration_s)
    error = None
    if failure is not None and not windows:
        error = _describe(failure, target)
    elif failure is not None:
        error = f"the upload broke off: {_describe(failure, target)}"
    else:
        error = stall_error(windows, skip, target)
    reporter.report("done", 1.0)
    return build_result(
        config,
        backend="http",
        target=target,
        started_at=started_at,
        windows_bps=windows,
        measured_s=meter.elapsed_s,
        bytes_sent=meter.total,
        skip_windows=skip,
        download_bps=download_bps,
        latency_ms=percentile(latencies, 50) if latencies else None,
        latency_under_load_ms=percentile(load_latencies, 50) if load_latencies else None,
        jitter_ms=jitter_of(load_latencies or latencies),
        error=error,
    )

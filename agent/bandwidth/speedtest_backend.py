"""The speedtest backend: speedtest-cli in a worker thread, against speedtest.net or a Speedtest Mini.

Three modes: speedtest.net's best nearby server (default), a pinned server id, or a Speedtest Mini URL
(`--url`, e.g. a `streamhealth bandwidth-server`). speedtest-cli always downloads its configuration
from www.speedtest.net, even in mini mode; here mini mode builds that configuration locally instead,
so a Mini server works where speedtest.net is unreachable. Bytes are counted as speedtest-cli hands
them to its connections, so the result has the same 1-second windows as the other backends.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import urlsplit

import speedtest

from agent.bandwidth.acked import AckedSockets
from agent.bandwidth.result import ByteMeter, build_result, failed_result, ramp_up_windows, sample_windows
from agent.errors import ConfigError
from agent.jobs import ProgressReporter
from agent.models import BandwidthResult, utc_now
from agent.redact import redact
from agent.settings import Settings

SOCKET_TIMEOUT_S = 10.0
UPLOAD_OVERRUN_S = 1.5
STRAGGLER_WAIT_S = UPLOAD_OVERRUN_S + 1.0
# Large bodies: speedtest-cli opens a new connection per request, and each one starts slow. Only sizes
# from speedtest.net's own list: for others (4 MiB, say) speedtest-cli builds a body a few bytes shorter
# than its Content-Length, and the server waits for the rest until the socket times out.
UPLOAD_SIZES = [1048576, 7340032]
UPLOAD_COUNT_PER_SIZE = 200  # 1.6 GB: enough for 10 s at 1 Gbit/s; bodies are made lazily
DOWNLOAD_SIZES = [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]

# speedtest-cli finds its upload data class by module name; only one test patches it at a time.
_patch_lock = threading.Lock()


def _mini_url(settings: Settings, url: str | None) -> str | None:
    mini = url or settings.bandwidth.speedtest_url
    if mini is None:
        return None
    parts = urlsplit(mini)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the Speedtest Mini server must be an http:// or https:// URL, got {redact(mini)!r}")
    return mini


def target_of(settings: Settings, url: str | None) -> str:
    mini = _mini_url(settings, url)
    if mini is not None:
        parts = urlsplit(mini)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if settings.bandwidth.speedtest_server_id is not None:
        return f"speedtest.net server {settings.bandwidth.speedtest_server_id}"
    return "speedtest.net"


def _mini_config(duration_s: float, download_s: float) -> dict[str, Any]:
    """What `Speedtest.get_config` would have fetched from speedtest.net, for a Mini server."""
    return {
        "client": {"ip": "", "lat": "0", "lon": "0", "isp": "", "isprating": "", "rating": "", "country": ""},
        "ignore_servers": [],
        "sizes": {"upload": UPLOAD_SIZES, "download": DOWNLOAD_SIZES},
        "counts": {"upload": UPLOAD_COUNT_PER_SIZE, "download": 1},
        "threads": {"upload": 4, "download": 4},
        # A little longer than we sample, so the last window is a full one.
        "length": {"upload": duration_s + UPLOAD_OVERRUN_S, "download": download_s},
        "upload_max": UPLOAD_COUNT_PER_SIZE * len(UPLOAD_SIZES),
    }


class _MiniSpeedtest(speedtest.Speedtest):  # type: ignore[misc]  # untyped library
    """speedtest-cli's client, minus the configuration download from speedtest.net."""

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        self._local_config = config
        super().__init__(**kwargs)

    def get_config(self) -> dict[str, Any]:
        self.config.update(self._local_config)
        self.lat_lon = (0.0, 0.0)
        config: dict[str, Any] = self.config
        return config


def explain(exc: BaseException, target: str, settings: Settings) -> str:
    """speedtest-cli's known failures, as a reason and a next step."""
    text = str(exc)
    if isinstance(exc, speedtest.ConfigRetrievalError):
        if "403" in text and not settings.bandwidth.speedtest_secure:
            return (
                "speedtest.net refused the configuration request (HTTP 403): set bandwidth.speedtest_secure = true "
                "(HTTPS usually fixes it), or use --backend http"
            )
        return (
            f"cannot fetch speedtest.net's configuration ({text or type(exc).__name__}): speedtest.net may be "
            "blocked here; use --backend speedtest --url <Speedtest Mini URL> or --backend http"
        )
    if isinstance(exc, speedtest.SpeedtestServersError | speedtest.ServersRetrievalError):
        return f"cannot fetch speedtest.net's server list ({text}); try again, or pin a server (bandwidth.speedtest_server_id)"
    if isinstance(exc, speedtest.NoMatchedServers):
        return (
            f"speedtest.net has no server with id {settings.bandwidth.speedtest_server_id}: "
            "check bandwidth.speedtest_server_id or unset it to pick the best server"
        )
    if isinstance(exc, speedtest.SpeedtestBestServerFailure):
        return f"no speedtest server answered the latency test ({target}): check the network or pick another server"
    if isinstance(exc, speedtest.SpeedtestMiniConnectFailure):
        return f"cannot connect to the Speedtest Mini server at {target}: check the URL and that the server runs"
    if isinstance(exc, speedtest.InvalidSpeedtestMiniServer):
        return f"{target} does not look like a Speedtest Mini server (no upload endpoint found): check the URL"
    if isinstance(exc, speedtest.SpeedtestException):
        return f"speedtest failed: {type(exc).__name__}: {text}"
    return f"speedtest failed: {type(exc).__name__}: {text}"


class _Runner:
    """The blocking part, run in a worker thread; hands back progress through thread-safe calls."""

    def __init__(self, settings: Settings, mini: str | None, duration_s: float, meter: ByteMeter) -> None:
        self.settings = settings
        self.mini = mini
        self.duration_s = duration_s
        self.download_s = max(1.0, min(5.0, duration_s / 3)) if settings.bandwidth.speedtest_download else 0.0
        self.written = ByteMeter()  # handed to the connections: the fallback without TCP_INFO
        self.acked = AckedSockets()
        self.meter = meter
        self.shutdown = threading.Event()
        self.upload_started = threading.Event()
        self.client: Any = None
        self.download_bps: float | None = None
        self.latency_ms: float | None = None
        self.server_name: str | None = None

    def run(self) -> None:
        secure = self.settings.bandwidth.speedtest_secure
        options: dict[str, Any] = {"timeout": SOCKET_TIMEOUT_S, "shutdown_event": self.shutdown}
        if self.mini is not None:
            client = _MiniSpeedtest(_mini_config(self.duration_s, self.download_s), secure=False, **options)
            client.get_best_server(client.set_mini_server(self.mini))
        else:
            client = speedtest.Speedtest(secure=secure, **options)
            client.config["length"]["upload"] = self.duration_s + UPLOAD_OVERRUN_S
            client.config["length"]["download"] = self.download_s or 1
            server_id = self.settings.bandwidth.speedtest_server_id
            client.get_servers([server_id] if server_id is not None else [])
            client.get_best_server()
            self.server_name = str(client.best.get("host") or "speedtest.net")
        self.client = client
        # speedtest-cli's "ping" is half the mean of its three request times.
        self.latency_ms = float(client.results.ping) * 2
        if self.download_s:
            self.download_bps = float(client.download())
        written, acked = self.written, self.acked
        original = speedtest.HTTPUploaderData
        connection_classes = [speedtest.SpeedtestHTTPConnection]
        if hasattr(speedtest, "SpeedtestHTTPSConnection"):
            connection_classes.append(speedtest.SpeedtestHTTPSConnection)
        original_connects = [cls.connect for cls in connection_classes]
        original_closes = [cls.close for cls in connection_classes]

        class CountingData(original):  # type: ignore[misc, valid-type]
            def read(self, n: int = 10240) -> bytes:
                chunk: bytes = super().read(n)
                written.add(len(chunk))
                return chunk

        def recording(connect: Any) -> Any:
            def connect_and_record(connection: Any) -> None:
                connect(connection)
                if connection.sock is not None:
                    acked.add(connection.sock)

            return connect_and_record

        def retiring(close: Any) -> Any:
            def read_then_close(connection: Any) -> None:
                if connection.sock is not None:
                    acked.retire(connection.sock)
                close(connection)

            return read_then_close

        with _patch_lock:
            speedtest.HTTPUploaderData = CountingData
            for cls, connect, close in zip(connection_classes, original_connects, original_closes, strict=True):
                cls.connect = recording(connect)
                cls.close = retiring(close)
            try:
                self.upload_started.set()
                client.upload(pre_allocate=False)
            finally:
                speedtest.HTTPUploaderData = original
                for cls, connect, close in zip(connection_classes, original_connects, original_closes, strict=True):
                    cls.connect = connect
                    cls.close = close


async def run(settings: Settings, *, reporter: ProgressReporter, url: str | None, duration_s: float) -> BandwidthResult:
    config = settings.bandwidth
    mini = _mini_url(settings, url)
    target = target_of(settings, url)
    started_at = utc_now()
    meter = ByteMeter()
    runner = _Runner(settings, mini, duration_s, meter)
    reporter.report("server", 0.02, f"contacting {target}")
    worker = asyncio.create_task(asyncio.to_thread(runner.run))
    total_s = runner.download_s + duration_s
    try:
        while not runner.upload_started.is_set():
            if worker.done():
                break
            await asyncio.wait([worker], timeout=0.1)
        if worker.done() and worker.exception() is not None:
            exc = worker.exception()
            assert exc is not None
            return failed_result(
                config, backend="speedtest", target=target, started_at=started_at, error=explain(exc, target, settings)
            )
        reporter.report("upload", runner.download_s / total_s, "uploading")

        def on_window(elapsed_s: float, rate_bps: float) -> None:
            reporter.report(
                "upload", min(0.99, (runner.download_s + elapsed_s) / total_s), f"{rate_bps / 1e6:.1f} Mbit/s"
            )

        def refresh() -> None:
            total = runner.acked.total()
            meter.set_total(total if total is not None else runner.written.total)

        await sample_windows(meter, duration_s, on_window, refresh=refresh, finished=worker.done)
        runner.acked.discard_unsent_on_close()
        runner.shutdown.set()  # the upload ends on its own timer; this only cuts a straggler short
        done, _ = await asyncio.wait([worker], timeout=STRAGGLER_WAIT_S)
        if not done:  # threads still sending or waiting on a reply: wake them by closing their sockets
            runner.acked.abort_all()
            done, _ = await asyncio.wait([worker], timeout=SOCKET_TIMEOUT_S + 5)
        failure = worker.exception() if done else None
    except asyncio.CancelledError:
        runner.shutdown.set()
        runner.acked.abort_all()
        raise
    windows = meter.windows_bps()
    skip = ramp_up_windows(config, duration_s)
    error = explain(failure, target, settings) if failure is not None else None
    if error is None and windows[skip:] and sum(1 for rate in windows[skip:] if rate <= 0) * 2 > len(windows[skip:]):
        error = f"{target} stopped accepting data during the test (stalled); the figure is not trustworthy"
    reporter.report("done", 1.0)
    target = runner.server_name or target
    return build_result(
        config,
        backend="speedtest",
        target=target,
        started_at=started_at,
        windows_bps=windows,
        measured_s=meter.elapsed_s,
        bytes_sent=meter.total,
        skip_windows=skip,
        download_bps=runner.download_bps,
        latency_ms=runner.latency_ms,
        error=error,
    )

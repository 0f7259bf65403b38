"""The rtmp backend: publish a synthetic stream to the ingest itself and measure what it accepted.

This is the figure no speed-test site gives: the throughput the real ingest takes from this machine.
A valid synthetic H.264/AAC stream (agent/rtmp/synthetic.py) is published at stepped bitrates, each
step doubling while the ingest keeps up; once it no longer does, the link is saturated and the next
`duration_s` seconds are measured. "Accepted" means acknowledged by the ingest: the kernel's
TCP_INFO bytes_acked on Linux, the ingest's RTMP Acknowledgement messages elsewhere, never bytes we
merely queued. On Twitch, `?bandwidthtest=true` keeps the test off air; elsewhere the test goes out
on the real key, and the caller is told so before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from agent.bandwidth.acked import discard_unsent_on_close
from agent.bandwidth.result import ByteMeter, build_result, failed_result, sample_windows
from agent.errors import ConfigError, ProtocolError
from agent.jobs import ProgressReporter
from agent.models import BandwidthResult, TcpInfo, utc_now
from agent.net.live import live_connections, target_name
from agent.net.tcpinfo import read_tcp_info
from agent.redact import redact, url_host_port
from agent.rtmp.client import RtmpPublisher, parse_rtmp_url, publish_synthetic
from agent.rtmp.errors import IngestError
from agent.rtmp.synthetic import SyntheticStream
from agent.settings import Settings

log = logging.getLogger(__name__)

STEP_S = 0.75
KEEPING_UP_RATIO = 0.85  # acked / published at or above this: the ingest keeps up, try the next step
SATURATE_FACTOR = 2  # measure while publishing this many times faster than the link carried
AUDIO_BPS = 128_000
ACK_WINDOW_BYTES = 256 * 1024  # asks the ingest to acknowledge often, for systems without TCP_INFO
CONNECT_TIMEOUT_S = 10.0
# 60 frames a second keeps each message small (100 Mbit/s -> 210 kB), well under ingests' message limits.
FPS = 60.0


def ingest_url_of(settings: Settings, url: str | None) -> str:
    ingest = url or settings.bandwidth.rtmp_url or settings.ingest.primary
    if not ingest:
        raise ConfigError(
            "the rtmp bandwidth test needs the ingest URL with your stream key: set ingest.primary "
            "(or bandwidth.rtmp_url), or pass --url rtmp://HOST/APP/KEY"
        )
    parse_rtmp_url(ingest)  # raises ConfigError, key redacted, when unusable
    return ingest


def target_of(settings: Settings, url: str | None) -> str:
    host, port = url_host_port(ingest_url_of(settings, url))
    return target_name(host, port)


def is_twitch(settings: Settings, url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return settings.platform == "twitch" or host.endswith(("twitch.tv", "live-video.net"))


def with_test_mode(settings: Settings, url: str) -> tuple[str, bool]:
    """The URL to publish to and whether it is a test mode (not on air)."""
    query = urlsplit(url).query.lower()
    if "bandwidthtest=true" in query:
        return url, True
    if settings.bandwidth.rtmp_bandwidthtest and is_twitch(settings, url):
        return f"{url}{'&' if query else '?'}bandwidthtest=true", True
    return url, False


class _AckedCounter:
    """Bytes the ingest acknowledged: TCP_INFO where the kernel offers it, RTMP Acknowledgements otherwise."""

    def __init__(self, publisher: RtmpPublisher) -> None:
        self.publisher = publisher
        self.tcp_info: TcpInfo | None = None
        sock = publisher.socket
        first = read_tcp_info(sock) if sock is not None else None
        self.kernel = first is not None
        self.base = _delivered(first) if first is not None else (publisher.peer_acknowledged_bytes or 0)
        self.tcp_info = first

    def acked(self) -> int:
        if self.kernel:
            sock = self.publisher.socket
            info = read_tcp_info(sock) if sock is not None else None
            if info is not None:
                self.tcp_info = info
                return max(0, _delivered(info) - self.base)
        return max(0, (self.publisher.peer_acknowledged_bytes or 0) - self.base)


def _delivered(info: TcpInfo) -> int:
    # SACKed bytes count too, so a loss recovery shows as neither a dip nor a burst.
    return info.bytes_acked + (info.sacked_bytes or 0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, IngestError | ProtocolError):
        return redact(str(exc))
    return redact(f"the RTMP test failed: {type(exc).__name__}: {exc}")


async def _find_saturation(
    stream: SyntheticStream,
    counter: _AckedCounter,
    settings: Settings,
    sender: asyncio.Task[None],
    report: Callable[[int], None],
) -> tuple[int, float]:
    """Double the bitrate while the ingest keeps up; return (last bitrate tried, acked rate there)."""
    bitrate = settings.bandwidth.rtmp_start_kbps * 1000
    maximum = settings.bandwidth.rtmp_max_kbps * 1000
    acked_bps = 0.0
    while True:
        stream.set_video_bitrate(bitrate)
        report(bitrate)
        before, started = counter.acked(), time.monotonic()
        await asyncio.wait([sender], timeout=STEP_S)
        if sender.done():
            return bitrate, acked_bps
        acked_bps = (counter.acked() - before) * 8 / (time.monotonic() - started)
        if acked_bps < KEEPING_UP_RATIO * (bitrate + AUDIO_BPS) or bitrate >= maximum:
            return bitrate, acked_bps
        bitrate = min(bitrate * 2, maximum)


async def run(settings: Settings, *, reporter: ProgressReporter, url: str | None, duration_s: float) -> BandwidthResult:
    config = settings.bandwidth
    ingest, test_mode = with_test_mode(settings, ingest_url_of(settings, url))
    target = target_of(settings, url)
    started_at = utc_now()
    if not test_mode:
        reporter.report(
            "warning",
            0.0,
            f"this test publishes a synthetic test picture to your real stream key on {target} for about "
            f"{duration_s + 5:.0f} s: if your platform puts it on air, viewers will see it",
        )
    reporter.report("connect", 0.02, f"publishing to {target}{' (test mode)' if test_mode else ''}")
    meter = ByteMeter()
    latency_ms: float | None = None
    load_info: TcpInfo | None = None
    published_bytes = 0
    try:
        async with RtmpPublisher(ingest, timeout_s=CONNECT_TIMEOUT_S, ack_window_bytes=ACK_WINDOW_BYTES) as publisher:
            sock: Any = publisher.socket
            with live_connections.registered(target, sock) if sock is not None else contextlib.nullcontext():
                counter = _AckedCounter(publisher)
                latency_ms = counter.tcp_info.rtt_ms if counter.tcp_info is not None else None
                stream = SyntheticStream(video_bitrate_bps=config.rtmp_start_kbps * 1000, audio_bitrate_bps=AUDIO_BPS)
                budget_s = duration_s + 20 * STEP_S + 5
                sender = asyncio.create_task(publish_synthetic(publisher, stream, budget_s), name="rtmp-bandwidth")
                try:
                    total_s = duration_s + 4 * STEP_S

                    def stepped(bitrate: int) -> None:
                        reporter.report("ramp-up", 0.05, f"publishing at {bitrate / 1e6:.1f} Mbit/s")

                    bitrate, acked_bps = await _find_saturation(stream, counter, settings, sender, stepped)
                    if not sender.done():
                        stream.set_video_bitrate(
                            min(max(bitrate, int(acked_bps * SATURATE_FACTOR)), config.rtmp_max_kbps * 1000)
                        )
                        reporter.report("upload", 4 * STEP_S / total_s, "measuring what the ingest accepts")

                        def on_window(elapsed_s: float, rate_bps: float) -> None:
                            fraction = min(0.99, (4 * STEP_S + elapsed_s) / total_s)
                            reporter.report("upload", fraction, f"{rate_bps / 1e6:.1f} Mbit/s accepted")

                        await sample_windows(
                            meter,
                            duration_s,
                            on_window,
                            refresh=lambda: meter.set_total(counter.acked()),
                            finished=sender.done,
                        )
                    load_info = counter.tcp_info
                finally:
                    if sock is not None:
                        discard_unsent_on_close(sock)  # seconds of queued test data must not outlive the test
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sender
                published_bytes = publisher.bytes_sent
                failure = sender.exception() if sender.done() and not sender.cancelled() else None
                if failure is not None:
                    raise failure
    except (IngestError, ProtocolError, OSError) as exc:
        windows = meter.windows_bps()
        if not windows:
            return failed_result(config, backend="rtmp", target=target, started_at=started_at, error=_describe(exc))
        return _result(settings, target, started_at, meter, latency_ms, load_info, published_bytes, _describe(exc))
    reporter.report("done", 1.0)
    return _result(settings, target, started_at, meter, latency_ms, load_info, published_bytes, None)


def _result(
    settings: Settings,
    target: str,
    started_at: Any,
    meter: ByteMeter,
    latency_ms: float | None,
    load_info: TcpInfo | None,
    published_bytes: int,
    error: str | None,
) -> BandwidthResult:
    windows = meter.windows_bps()
    if error is None and windows and sum(1 for rate in windows if rate <= 0) * 2 > len(windows):
        error = f"the ingest at {target} stopped accepting data during the test (stalled)"
    return build_result(
        settings.bandwidth,
        backend="rtmp",
        target=target,
        started_at=started_at,
        windows_bps=windows,
        measured_s=meter.elapsed_s,
        bytes_sent=published_bytes or meter.total,
        skip_windows=1 if len(windows) > 2 else 0,
        latency_ms=latency_ms,
        latency_under_load_ms=load_info.rtt_ms if load_info is not None else None,
        jitter_ms=load_info.rtt_variance_ms if load_info is not None else None,
        error=error,
    )

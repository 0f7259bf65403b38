"""The rtmp backend: publish a synthetic stream to the ingest itself and measure what it accepted.

(Being built on the RTMP client in agent/rtmp/; until then it reports that it is unavailable.)
"""

from __future__ import annotations

from agent.bandwidth.result import failed_result
from agent.jobs import ProgressReporter
from agent.models import BandwidthResult, utc_now
from agent.redact import url_host_port
from agent.settings import Settings


def target_of(settings: Settings, url: str | None) -> str:
    ingest = url or settings.bandwidth.rtmp_url or settings.ingest.primary or ""
    host, port = url_host_port(ingest)
    return f"{host}:{port}"


async def run(settings: Settings, *, reporter: ProgressReporter, url: str | None, duration_s: float) -> BandwidthResult:
    return failed_result(
        settings.bandwidth,
        backend="rtmp",
        target=target_of(settings, url),
        started_at=utc_now(),
        error="the rtmp backend is not available in this build yet; use --backend http or speedtest",
    )

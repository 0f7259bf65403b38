"""Bandwidth test routes: start a test as a job (progress on the event stream) and read the last result.

The test itself runs in `agent.bandwidth`; these routes only start it and read what it reported.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from agent.api.job_results import last_report_response
from agent.bandwidth import run_bandwidth_test
from agent.errors import ConfigError
from agent.http.openapi import error_responses
from agent.jobs import JobBusy, ProgressReporter
from agent.models import BandwidthResult
from agent.redact import redact
from agent.runtime import Agent

JOB = "bandwidth"


# What the backends can use, written as the document's patterns so that a client (or a fuzzer) knows
# before sending: a host name or address, an optional port 1-65535, and for rtmp an app and a stream key.
_HOST = r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?"
_PORT = r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
# No control characters: Python's str.strip (the URL parsers') takes \x1c-\x1f for white space where the
# validator's \s does not, so a key of "\x1e" passed the pattern and then read as no key at all.
_NOT = r"\s\x00-\x1f\x7f"
SERVER_URL_PATTERN = rf"^https?://{_HOST}{_PORT}(/[^{_NOT}?#]*)?$"
INGEST_URL_PATTERN = rf"^rtmps?://{_HOST}{_PORT}/[^{_NOT}/?#]+/[^{_NOT}/?#][^{_NOT}#]*$"


class _TestRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    duration_s: float | None = Field(None, gt=0, le=120, description="Seconds of upload measurement")


class DefaultBandwidthTest(_TestRequest):
    """The backend and its server from the settings (bandwidth.backend and its URL)."""

    backend: None = Field(None, description="Omitted or null: bandwidth.backend")


class ServerBandwidthTest(_TestRequest):
    """The http or speedtest backend, against `url` or the configured server."""

    backend: Literal["http", "speedtest"]
    url: Annotated[str, Field(pattern=SERVER_URL_PATTERN)] | None = Field(
        None, description="http(s)://HOST[:PORT][/path]; default bandwidth.http_url / bandwidth.speedtest_url"
    )


class IngestBandwidthTest(_TestRequest):
    """The rtmp backend: publish a test stream to `url` or the configured ingest."""

    backend: Literal["rtmp"]
    url: Annotated[str, Field(pattern=INGEST_URL_PATTERN)] | None = Field(
        None, description="rtmp(s)://HOST[:PORT]/APP/KEY; default bandwidth.rtmp_url or ingest.primary"
    )


BandwidthTestRequest = ServerBandwidthTest | IngestBandwidthTest | DefaultBandwidthTest


class JobStarted(BaseModel):
    job_id: str
    job: str = JOB
    events: str = Field(description="Where progress and the result arrive (Server-Sent Events)")


def add_bandwidth_routes(router: APIRouter, agent: Agent, prefix: str) -> None:

    @router.post(
        f"{prefix}/bandwidth-test",
        status_code=202,
        response_model=JobStarted,
        responses=error_responses(
            409,
            422,
            s409="A bandwidth test is already running, or the agent has no server for this backend (configure one)",
            s422="The body is invalid, or its `url` cannot be used with its backend",
        ),
        summary="Start a bandwidth test; progress and the result arrive on the event stream",
    )
    async def start_bandwidth_test(body: Annotated[BandwidthTestRequest | None, Body()] = None) -> JobStarted:
        request = body or DefaultBandwidthTest()
        settings = agent.settings
        backend = request.backend or settings.bandwidth.backend
        url = None if isinstance(request, DefaultBandwidthTest) else request.url

        async def work(reporter: ProgressReporter) -> BandwidthResult:
            return await run_bandwidth_test(
                settings, backend=backend, reporter=reporter, url=url, duration_s=request.duration_s
            )

        # Catch a configuration problem now rather than as a failed job later: a `url` the client sent that
        # cannot be used is the request's fault (422); no server in the settings is the agent's state (409).
        try:
            _check_configured(agent, backend, url)
        except ConfigError as exc:
            raise HTTPException(422 if url is not None else 409, redact(str(exc))) from None
        try:
            job_id = agent.jobs.start(JOB, work, deadline_s=settings.bandwidth.deadline_s + 30)
        except JobBusy as exc:
            raise HTTPException(409, str(exc)) from None
        return JobStarted(job_id=job_id, events=f"{prefix}/events")

    @router.get(
        f"{prefix}/bandwidth-test",
        response_model=BandwidthResult,
        responses=error_responses(404, s404="No bandwidth test has finished with a result yet (the detail says why)"),
        summary="The last bandwidth test's result",
    )
    async def last_bandwidth_test() -> Response:
        return last_report_response(
            agent.jobs,
            JOB,
            BandwidthResult,
            noun="bandwidth test",
            start_hint=f"POST {prefix}/bandwidth-test starts one",
        )


def _check_configured(agent: Agent, backend: str, url: str | None) -> None:
    from agent.bandwidth import http_backend, rtmp_backend, speedtest_backend

    settings = agent.settings
    if backend == "http":
        http_backend.target_of(settings, url)
    elif backend == "speedtest":
        speedtest_backend.target_of(settings, url)
    elif backend == "rtmp":
        rtmp_backend.target_of(settings, url)

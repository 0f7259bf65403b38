"""Bandwidth test routes: start a test as a job (progress on the event stream) and read the last result.

The test itself runs in `agent.bandwidth`; these routes only start it and read what it reported.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from agent.api.job_results import last_report_response
from agent.bandwidth import run_bandwidth_test
from agent.errors import ConfigError
from agent.jobs import JobBusy, ProgressReporter
from agent.models import BandwidthResult, ErrorBody
from agent.models.reports import BandwidthBackend
from agent.redact import redact
from agent.runtime import Agent

JOB = "bandwidth"


class BandwidthTestRequest(BaseModel):
    backend: BandwidthBackend | None = Field(None, description="speedtest, http or rtmp; default bandwidth.backend")
    url: str | None = Field(None, description="Server (http/speedtest) or ingest URL (rtmp); default from settings")
    duration_s: float | None = Field(None, gt=0, le=120, description="Seconds of upload measurement")


class JobStarted(BaseModel):
    job_id: str
    job: str = JOB
    events: str = Field(description="Where progress and the result arrive (Server-Sent Events)")


def add_bandwidth_routes(app: FastAPI, agent: Agent, prefix: str) -> None:
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody},
        404: {"model": ErrorBody},
        409: {"model": ErrorBody},
    }

    @app.post(
        f"{prefix}/bandwidth-test",
        status_code=202,
        response_model=JobStarted,
        responses=errors,
        summary="Start a bandwidth test; progress and the result arrive on the event stream",
    )
    async def start_bandwidth_test(request: BandwidthTestRequest | None = None) -> JSONResponse:
        body = request or BandwidthTestRequest()
        settings = agent.settings
        backend = body.backend or settings.bandwidth.backend

        async def work(reporter: ProgressReporter) -> BandwidthResult:
            return await run_bandwidth_test(
                settings, backend=backend, reporter=reporter, url=body.url, duration_s=body.duration_s
            )

        # Catch a configuration problem now, with a 400, rather than as a failed job later.
        try:
            _check_configured(agent, backend, body.url)
        except ConfigError as exc:
            raise HTTPException(400, redact(str(exc))) from None
        try:
            job_id = agent.jobs.start(JOB, work, deadline_s=settings.bandwidth.deadline_s + 30)
        except JobBusy as exc:
            raise HTTPException(409, str(exc)) from None
        started = JobStarted(job_id=job_id, events=f"{prefix}/events")
        return JSONResponse(started.model_dump(), status_code=202)

    @app.get(
        f"{prefix}/bandwidth-test",
        response_model=BandwidthResult,
        responses=errors,
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

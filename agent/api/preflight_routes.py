"""Preflight routes: start a preflight on the running agent as a job (progress on the event stream,
the report as the `job_finished` event and in the health log) and read the last report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from agent.api.job_results import last_report_response
from agent.http.openapi import error_responses
from agent.jobs import JobBusy, ProgressReporter
from agent.models import PreflightReport, PreflightStarted
from agent.platforms import load_preset
from agent.preflight import DEFAULT_DURATION_S, run_preflight
from agent.runtime import Agent
from agent.settings import PlatformName

JOB = "preflight"


class PreflightRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")  # `"bandwidth": 0` is not a yes

    platform: PlatformName | None = Field(None, description="tiktok, twitch, youtube or custom; default `platform`")
    duration_s: float = Field(DEFAULT_DURATION_S, ge=1, le=300, description="Seconds to watch")
    bandwidth: bool = Field(True, description="Run the bandwidth test (bandwidth.backend) during the window")


def add_preflight_routes(router: APIRouter, agent: Agent, prefix: str) -> None:

    @router.post(
        f"{prefix}/preflight",
        status_code=202,
        response_model=PreflightStarted,
        responses=error_responses(409, s409="A preflight is already running"),
        summary="Start a preflight go / no-go check; progress and the report arrive on the event stream",
    )
    async def start_preflight(body: Annotated[PreflightRequest | None, Body()] = None) -> PreflightStarted:
        request = body or PreflightRequest()
        load_preset(request.platform or agent.settings.platform)  # shipped presets were validated at start-up

        async def work(reporter: ProgressReporter) -> PreflightReport:
            return await run_preflight(
                agent,
                reporter=reporter,
                platform=request.platform,
                duration_s=request.duration_s,
                bandwidth=request.bandwidth,
            )

        deadline_s = request.duration_s + (agent.settings.bandwidth.deadline_s if request.bandwidth else 0) + 30
        try:
            job_id = agent.jobs.start(JOB, work, deadline_s=deadline_s)
        except JobBusy as exc:
            raise HTTPException(409, str(exc)) from None
        return PreflightStarted(job_id=job_id, events=f"{prefix}/events")

    @router.get(
        f"{prefix}/preflight",
        response_model=PreflightReport,
        responses=error_responses(404, s404="No preflight has finished with a report yet (the detail says why)"),
        summary="The last preflight report",
    )
    async def last_preflight() -> Response:
        return last_report_response(
            agent.jobs, JOB, PreflightReport, noun="preflight", start_hint=f"POST {prefix}/preflight starts one"
        )

"""Preflight routes: start a preflight on the running agent as a job (progress on the event stream,
the report as the `job_finished` event and in the health log) and read the last report."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.exceptions import HTTPException
from starlette.responses import Response

from agent.api.job_results import last_report_response
from agent.api.routing import Call, Endpoint, NoParams
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


def preflight_endpoints(agent: Agent, prefix: str) -> list[Endpoint[Any, Any]]:
    async def start_preflight(call: Call[NoParams, PreflightRequest | None]) -> PreflightStarted:
        body = call.body or PreflightRequest()
        load_preset(body.platform or agent.settings.platform)  # shipped presets were validated at start-up

        async def work(reporter: ProgressReporter) -> PreflightReport:
            return await run_preflight(
                agent, reporter=reporter, platform=body.platform, duration_s=body.duration_s, bandwidth=body.bandwidth
            )

        deadline_s = body.duration_s + (agent.settings.bandwidth.deadline_s if body.bandwidth else 0) + 30
        try:
            job_id = agent.jobs.start(JOB, work, deadline_s=deadline_s)
        except JobBusy as exc:
            raise HTTPException(409, str(exc)) from None
        return PreflightStarted(job_id=job_id, events=f"{prefix}/events")

    async def last_preflight(_: Call[NoParams, None]) -> Response:
        return last_report_response(
            agent.jobs, JOB, PreflightReport, noun="preflight", start_hint=f"POST {prefix}/preflight starts one"
        )

    return [
        Endpoint(
            method="POST",
            path=f"{prefix}/preflight",
            handler=start_preflight,
            summary="Start a preflight go / no-go check; progress and the report arrive on the event stream",
            body=TypeAdapter(PreflightRequest | None),
            status_code=202,
            returns=PreflightStarted,
            errors={409: "A preflight is already running"},
        ),
        Endpoint(
            method="GET",
            path=f"{prefix}/preflight",
            handler=last_preflight,
            summary="The last preflight report",
            returns=PreflightReport,
            errors={404: "No preflight has finished with a report yet (the detail says why)"},
        ),
    ]

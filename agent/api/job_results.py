"""Serving the last report of an on-demand job (bandwidth test, preflight): one shape for every job."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from agent.jobs import Jobs
from agent.redact import redact


def last_report_response(jobs: Jobs, job: str, model: type[BaseModel], *, noun: str, start_hint: str) -> Response:
    """The last finished `job`'s report as `model`, or a 404 that says why there is none and how to
    start one (a job is running, none has run, or the last one failed with its reason)."""
    finished = jobs.last(job)
    if finished is None:
        running = jobs.running(job)
        detail = f"a {noun} is running (job {running})" if running else f"no {noun} has run yet"
        raise HTTPException(404, f"{detail}; {start_hint}")
    if finished.report is None:
        raise HTTPException(404, f"the last {noun} ended without a result: {finished.error}")
    report = model.model_validate(finished.report)
    return Response(redact(report.model_dump_json()), media_type="application/json")

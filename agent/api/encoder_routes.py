"""HTTP routes of the encoder sources: ffmpeg posts its `-progress` here; OBS can be told to reconnect.

ffmpeg's `-progress http://127.0.0.1:8765/api/v1/ffmpeg/progress` opens one chunked POST and writes a
block about every second until it ends, so the body is read incrementally and each block is published
as it arrives. A body that is not `-progress` output ends that request with 400; the agent goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Literal, cast

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from agent.errors import ProtocolError
from agent.http.openapi import error_responses
from agent.runtime import Agent

if TYPE_CHECKING:  # the source modules (and websockets) load only when their source is enabled
    from agent.sources.ffmpeg import FfmpegSource
    from agent.sources.obs import ObsSource

log = logging.getLogger(__name__)

PROGRESS_PATH = "/ffmpeg/progress"  # read as a stream, so the body limit does not apply (agent/api/app.py)


# The body is read as a stream, not validated as JSON: this says what it is. The pattern is a
# simple instance (key=number lines, then progress=continue|end); real ffmpeg output has more value forms.
PROGRESS_BODY = {
    "required": True,
    "description": "ffmpeg -progress blocks: key=value lines, each block ending with progress=continue or end",
    "content": {
        "text/plain": {
            "schema": {
                "type": "string",
                "pattern": "^([a-oq-z_][a-z_0-9]{0,31}=[0-9]{0,9}\\n){0,8}progress=(continue|end)\\n$",
                "example": "frame=120\nout_time_us=4000000\nprogress=continue\n",
            }
        }
    },
}


class ProgressAccepted(BaseModel):
    blocks: int
    ended: bool


class ProgressEndpoint(BaseModel):
    accepting: bool


class ReconnectRequested(BaseModel):
    detail: str


def add_encoder_routes(router: APIRouter, agent: Agent, prefix: str) -> None:

    def ffmpeg_source() -> FfmpegSource:
        source = cast("FfmpegSource | None", next((s for s in agent.sources if s.name == "ffmpeg"), None))
        if source is None or not source.settings.http_endpoint:
            raise HTTPException(
                404, "the agent does not take ffmpeg progress: set sources.ffmpeg.enabled and http_endpoint to true"
            )
        return source

    @router.get(
        f"{prefix}{PROGRESS_PATH}",
        response_model=ProgressEndpoint,
        responses=error_responses(404, s404="The ffmpeg source or its HTTP endpoint is off"),
        summary="Whether this agent takes ffmpeg progress (what `streamhealth run` checks)",
    )
    async def ffmpeg_progress_accepting() -> ProgressEndpoint:
        ffmpeg_source()
        return ProgressEndpoint(accepting=True)

    @router.post(
        f"{prefix}{PROGRESS_PATH}",
        response_model=ProgressAccepted,
        responses=error_responses(
            400, 404, s400="The body is not ffmpeg's -progress output", s404="The ffmpeg source or its endpoint is off"
        ),
        openapi_extra={"requestBody": PROGRESS_BODY},
        summary="ffmpeg's -progress output (chunked POST from `-progress http://...`)",
    )
    async def ffmpeg_progress(
        request: Request,
        via: Annotated[
            Literal["http", "wrapper"], Query(description="who posts: ffmpeg itself or the wrapper")
        ] = "http",
    ) -> ProgressAccepted:
        feed = ffmpeg_source().open_feed(via, agent)
        try:
            async for chunk in request.stream():
                feed.feed(chunk)
        except ProtocolError as exc:
            log.warning("dropped an ffmpeg progress upload: %s", exc)
            raise HTTPException(400, f"{exc}; send ffmpeg's -progress output") from None
        except ClientDisconnect:
            # ffmpeg was killed or lost the connection mid-body: what arrived was published; the silence
            # watch reports that progress stopped without progress=end.
            log.info("ffmpeg progress upload (%s) ended without progress=end", via)
        else:
            if feed.blocks == 0:
                raise HTTPException(
                    400, "no ffmpeg -progress block in the body (no progress= line); send ffmpeg's -progress output"
                )
        return ProgressAccepted(blocks=feed.blocks, ended=feed.tracker.ended)

    @router.post(
        f"{prefix}/obs/reconnect",
        response_model=ReconnectRequested,
        responses=error_responses(404, s404="The OBS source is off"),
        summary="Connect to OBS again now",
    )
    async def obs_reconnect() -> ReconnectRequested:
        source = cast("ObsSource | None", next((s for s in agent.sources if s.name == "obs"), None))
        if source is None:
            raise HTTPException(404, "the OBS source is off: set sources.obs.enabled = true")
        source.request_reconnect()
        return ReconnectRequested(detail=f"reconnecting to OBS (was: {source.connection})")

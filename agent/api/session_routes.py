"""Stream session routes: the sessions in the health logs with their summaries (the History screen's list).

The live session is answered from the agent's own running summary (cheap, fresh); ended ones from the
summary records in the log; a session whose agent was killed is rebuilt from its records, once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from starlette.exceptions import HTTPException

from agent.api.routing import Call, Endpoint, NoParams
from agent.logs.session_index import SessionIndex
from agent.models import SessionDetail, SessionList
from agent.runtime import Agent


class SessionParams(BaseModel):
    session_id: str


def session_endpoints(agent: Agent, prefix: str) -> list[Endpoint[Any, Any]]:
    index = SessionIndex(agent.settings.logs.dir)

    def current_run_id() -> str | None:
        return agent.log_writer.stem if agent.log_writer is not None else None

    async def sessions(_: Call[NoParams, None]) -> SessionList:
        live = agent.sessions.live_summary()
        found = await asyncio.to_thread(index.sessions, current_run_id(), live)
        return SessionList(sessions=found)

    async def session(call: Call[SessionParams, None]) -> SessionDetail:
        session_id = call.params.session_id
        live = agent.sessions.live_summary()
        detail = await asyncio.to_thread(index.session, session_id, current_run_id(), live)
        if detail is None:
            raise HTTPException(
                404, f"no single session {session_id!r} in the health logs; GET {prefix}/sessions lists them"
            )
        return detail

    return [
        Endpoint(
            method="GET",
            path=f"{prefix}/sessions",
            handler=sessions,
            summary="Stream sessions (one live stream each) from the health logs, newest first, with their summaries",
            returns=SessionList,
        ),
        Endpoint(
            method="GET",
            path=f"{prefix}/sessions/{{session_id}}",
            handler=session,
            summary="One stream session: its summary and alert timeline (a unique prefix of the id is enough)",
            params=SessionParams,
            returns=SessionDetail,
            errors={404: "No single session with that id (or id prefix) in the health logs"},
        ),
    ]

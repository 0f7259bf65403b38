"""Stream session routes: the sessions in the health logs with their summaries (the History screen's list).

The live session is answered from the agent's own running summary (cheap, fresh); ended ones from the
summary records in the log; a session whose agent was killed is rebuilt from its records, once.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException

from agent.http.openapi import error_responses
from agent.logs.session_index import SessionIndex
from agent.models import SessionDetail, SessionList
from agent.runtime import Agent


def add_session_routes(router: APIRouter, agent: Agent, prefix: str) -> None:
    index = SessionIndex(agent.settings.logs.dir)

    def current_run_id() -> str | None:
        return agent.log_writer.stem if agent.log_writer is not None else None

    @router.get(
        f"{prefix}/sessions",
        response_model=SessionList,
        summary="Stream sessions (one live stream each) from the health logs, newest first, with their summaries",
    )
    async def sessions() -> SessionList:
        live = agent.sessions.live_summary()
        found = await asyncio.to_thread(index.sessions, current_run_id(), live)
        return SessionList(sessions=found)

    @router.get(
        f"{prefix}/sessions/{{session_id}}",
        response_model=SessionDetail,
        responses=error_responses(404, s404="No single session with that id (or id prefix) in the health logs"),
        summary="One stream session: its summary and alert timeline (a unique prefix of the id is enough)",
    )
    async def session(session_id: str) -> SessionDetail:
        live = agent.sessions.live_summary()
        detail = await asyncio.to_thread(index.session, session_id, current_run_id(), live)
        if detail is None:
            raise HTTPException(
                404, f"no single session {session_id!r} in the health logs; GET {prefix}/sessions lists them"
            )
        return detail

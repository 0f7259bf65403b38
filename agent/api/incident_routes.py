"""The incident route: the whole run's timeline (the snapshot carries only the last 10 minutes).

Read from the runtime's bounded memory (agent/incidents.py); no request measures or reads a file.
"""

from __future__ import annotations

from fastapi import APIRouter

from agent.models.incidents import IncidentList
from agent.runtime import Agent


def add_incident_routes(router: APIRouter, agent: Agent, prefix: str) -> None:
    @router.get(
        f"{prefix}/incidents",
        response_model=IncidentList,
        summary="What happened since the agent started (link slowed, alerts, relay drops, failovers), newest first",
    )
    async def incidents() -> IncidentList:
        kept = agent.incidents.all()
        return IncidentList(incidents=kept, since=agent.started_at, let_go=agent.incidents.total - len(kept))

"""The incident route: the whole run's timeline (the snapshot carries only the last 10 minutes).

Read from the runtime's bounded memory (agent/incidents.py); no request measures or reads a file.
"""

from __future__ import annotations

from typing import Any

from agent.api.routing import Call, Endpoint, NoParams
from agent.models.incidents import IncidentList
from agent.runtime import Agent


def incident_endpoints(agent: Agent, prefix: str) -> list[Endpoint[Any, Any]]:
    async def incidents(_: Call[NoParams, None]) -> IncidentList:
        kept = agent.incidents.all()
        return IncidentList(incidents=kept, since=agent.started_at, let_go=agent.incidents.total - len(kept))

    return [
        Endpoint(
            method="GET",
            path=f"{prefix}/incidents",
            handler=incidents,
            summary="What happened since the agent started (link slowed, alerts, relay drops, failovers), newest first",
            returns=IncidentList,
        )
    ]

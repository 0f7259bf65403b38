"""One contract, really: the TUI's client reads every endpoint with the very model the API declares
and serves. Two checks: each entry of the client's RESPONSE_MODELS against the `response_model` of the
route in the agent's own app (fails the moment either side changes alone), and every client method
exercised against a real agent over loopback HTTP."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from agent.api.app import create_app
from agent.models import AlertsView, HealthSnapshot, PreflightReport, RunDetail, RunSummary
from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings, system_sample
from tests.tui import data
from tui.client import RESPONSE_MODELS, AgentClient


def _declared_models(route: APIRoute) -> set[object]:
    model = route.response_model
    args = typing.get_args(model)
    return set(args) if args else {model}


def test_every_model_the_client_reads_is_the_one_the_route_declares(tmp_path: Path) -> None:
    app = create_app(Agent(make_settings(tmp_path), []))
    endpoints = {
        (method, route.path): route for route in app.routes if isinstance(route, APIRoute) for method in route.methods
    }
    for (method, path), model in RESPONSE_MODELS.items():
        endpoint = endpoints.get((method, path))
        assert endpoint is not None, f"the client reads {method} {path}, which the agent does not serve"
        assert model in _declared_models(endpoint), (
            f"{method} {path}: the client reads {model.__name__}, the API declares {endpoint.response_model}"
        )


@pytest.fixture
async def agent_and_client(tmp_path: Path) -> AsyncIterator[tuple[Agent, AgentClient]]:
    settings = make_settings(tmp_path)
    agent = Agent(settings, [])
    server = AgentServer(settings, agent)
    await server.start()
    client = AgentClient(server.url)
    try:
        yield agent, client
    finally:
        await client.aclose()
        await server.stop()


async def test_every_client_method_reads_a_real_agents_answers(agent_and_client: tuple[Agent, AgentClient]) -> None:
    agent, client = agent_and_client
    agent.publish("system", system_sample(cpu=0.3))
    agent.tick()

    assert isinstance(await client.health(), HealthSnapshot)
    assert isinstance(await client.alerts(), AlertsView)
    assert [value for _, value in (await client.history("system.cpu_usage_ratio", last_s=60)).points] == [0.3]
    runs = await client.runs()
    assert [run.current for run in runs] == [True] and isinstance(runs[0], RunSummary)
    assert isinstance(await client.run(runs[0].run_id), RunDetail)

    assert await client.last_preflight() is None  # none run yet
    # A preflight that ran elsewhere (another client, `curl -X POST`): the job machinery is the
    # agent's own, only the work is a ready report, so the test needs no ingest.
    report = data.preflight_report()

    async def work(_: object) -> PreflightReport:
        return report

    agent.jobs.start("preflight", work, deadline_s=10)
    await agent.jobs.wait("preflight")
    assert await client.last_preflight() == report

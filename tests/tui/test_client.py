"""The agent client: every event type becomes the right message, bad payloads are reported and
skipped, the stream reconnects after the agent goes away, and HTTP errors become clear messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from tests.tui import data
from tests.tui.fake_agent import FakeAgent
from tui.client import AgentClient, AgentRequestError
from tui.messages import (
    AlertChanged,
    ConnectionChanged,
    EventsLagged,
    JobDone,
    JobProgressed,
    PayloadProblem,
    SnapshotReceived,
)


def collecting_client(**kwargs: object) -> tuple[AgentClient, list[object]]:
    received: list[object] = []
    client = AgentClient("http://agent.test", **kwargs)  # type: ignore[arg-type]
    client.attach(received.append)
    return client, received


def test_each_event_type_is_parsed_with_the_agent_models_into_its_message() -> None:
    client, received = collecting_client()
    client.feed("tick", data.tick_json(data.snapshot(cpu=0.5)))
    client.feed("alert", data.alert_json("raised", data.alert()))
    client.feed("progress", data.progress_json("upload bandwidth", 0.5))
    client.feed("job_finished", data.job_finished_json(data.preflight_report()))
    client.feed("lagged", '{"missed_events": 7}')
    client.feed("sample", '{"type": "sample"}')  # repeated by the next tick: ignored
    client.feed("some_future_event", "{}")
    kinds = [type(message) for message in received]
    assert kinds == [SnapshotReceived, AlertChanged, JobProgressed, JobDone, EventsLagged]
    assert isinstance(received[0], SnapshotReceived)
    assert received[0].snapshot.system is not None
    assert received[0].snapshot.system.cpu_usage_ratio == 0.5
    assert isinstance(received[4], EventsLagged) and received[4].missed == 7


@pytest.mark.parametrize(
    ("event", "payload", "says"),
    [
        ("tick", "{not json", "Invalid JSON"),
        ("tick", '{"type": "tick", "snapshot": {"taken_at": "yesterday"}}', "snapshot"),
        ("alert", '{"type": "alert", "at": "2026-11-25T00:00:00Z", "change": {"change": "exploded"}}', "change"),
        ("lagged", '{"missed": 3}', "missed_events"),
    ],
)
def test_bad_payload_is_reported_and_skipped_without_raising(event: str, payload: str, says: str) -> None:
    client, received = collecting_client()
    client.feed(event, payload)
    client.feed("tick", data.tick_json(data.snapshot()))
    assert isinstance(received[0], PayloadProblem)
    assert received[0].event == event
    assert says in received[0].detail
    assert isinstance(received[1], SnapshotReceived)  # the next good event still gets through


@contextlib.asynccontextmanager
async def following(client: AgentClient) -> AsyncIterator[None]:
    task = asyncio.create_task(client.run_events())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_event_stream_delivers_ticks_and_reconnects_after_the_agent_comes_back() -> None:
    agent = FakeAgent()
    client, received = collecting_client(transport=agent.transport, backoff_first_s=0.01, backoff_max_s=0.05)
    async with following(client):
        await wait_for(lambda: client.state == "connected")
        agent.push("tick", data.tick_json(data.snapshot(cpu=0.25)))
        await wait_for(lambda: any(isinstance(m, SnapshotReceived) for m in received))

        agent.go_down()
        await wait_for(lambda: client.state == "disconnected")
        states = [m for m in received if isinstance(m, ConnectionChanged) and m.state == "disconnected"]
        assert states[-1].retry_in_s is not None
        assert "agent" in states[-1].detail

        agent.come_back()
        await wait_for(lambda: client.state == "connected")
        received.clear()
        agent.push("tick", data.tick_json(data.snapshot(cpu=0.75)))
        await wait_for(lambda: any(isinstance(m, SnapshotReceived) for m in received))
        snapshot = next(m for m in received if isinstance(m, SnapshotReceived)).snapshot
        assert snapshot.system is not None and snapshot.system.cpu_usage_ratio == 0.75
    assert agent.stream_connections >= 2


async def test_refused_token_is_reported_as_unauthorized_with_what_to_do() -> None:
    agent = FakeAgent()
    agent.token = "right-token"
    client, received = collecting_client(transport=agent.transport, token="wrong-token", backoff_max_s=0.05)
    async with following(client):
        await wait_for(lambda: client.state == "unauthorized")
    message = next(m for m in received if isinstance(m, ConnectionChanged) and m.state == "unauthorized")
    assert "--token" in message.detail


async def test_preflight_is_posted_with_platform_duration_and_bandwidth_and_409_says_it_runs() -> None:
    agent = FakeAgent()
    client = AgentClient("http://agent.test", transport=agent.transport)
    assert await client.start_preflight("youtube", 12.0, False) == "job1"
    assert agent.preflight_bodies == [{"platform": "youtube", "duration_s": 12.0, "bandwidth": False}]
    agent.preflight_status = 409
    with pytest.raises(AgentRequestError, match="already running"):
        await client.start_preflight("youtube", 12.0, False)
    await client.aclose()


async def test_unreachable_agent_is_a_clear_request_error() -> None:
    agent = FakeAgent()
    agent.go_down()
    client = AgentClient("http://agent.test", transport=agent.transport)
    with pytest.raises(AgentRequestError, match="is the agent running"):
        await client.alerts()
    await client.aclose()


async def test_unknown_run_is_a_request_error_naming_the_status() -> None:
    client = AgentClient("http://agent.test", transport=FakeAgent().transport)
    with pytest.raises(AgentRequestError, match="404"):
        await client.run("streamhealth-nope")
    await client.aclose()

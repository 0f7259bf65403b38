"""POST / GET /api/v1/preflight on a running agent: a job with progress events, one at a time, and
the report as the `job_finished` event, in the health log and from GET."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from agent.api.app import create_app
from agent.runtime import Agent
from agent.settings import load_settings


async def test_preflight_runs_as_a_job_reports_progress_and_keeps_the_last_report(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'platform = "youtube"\n[logs]\ndir = "{tmp_path / "logs"}"\n')
    agent = Agent(load_settings(config, environ={}), sources=[])
    await agent.start()
    subscription = agent.bus.subscribe()
    try:
        transport = httpx.ASGITransport(app=create_app(agent))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            missing = await client.get("/api/v1/preflight")
            assert missing.status_code == 404 and "no preflight has run yet" in missing.json()["detail"]
            started = await client.post("/api/v1/preflight", json={"duration_s": 1.5, "bandwidth": False})
            assert started.status_code == 202
            job_id = started.json()["job_id"]
            busy = await client.post("/api/v1/preflight", json={"duration_s": 1, "bandwidth": False})
            assert busy.status_code == 409 and job_id in busy.json()["detail"]
            finished = await agent.jobs.wait("preflight")
            assert finished is not None and finished.ok, finished
            last = await client.get("/api/v1/preflight")
            assert last.status_code == 200
            report = last.json()
            assert report["platform"] == "youtube" and report["verdict"] in ("GO", "GO_WITH_WARNINGS", "NO_GO")
            assert {check["name"] for check in report["checks"]} >= {"bandwidth", "ingest", "encoder"}
            assert report["recommended"]["keyframe_interval_s"] == 2.0
    finally:
        await agent.stop()
    events = []
    while not subscription.queue.empty():
        event = subscription.queue.get_nowait()
        events.append((event.type, json.loads(event.data)))
    progress = [data for kind, data in events if kind == "progress" and data["job"] == "preflight"]
    assert any(p["step"] == "observing" for p in progress) and all(p["job_id"] == job_id for p in progress)
    (done,) = [data for kind, data in events if kind == "job_finished" and data["job"] == "preflight"]
    assert done["report"]["verdict"] == report["verdict"]
    logged = [
        json.loads(line) for path in (tmp_path / "logs").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert any(record["type"] == "job_finished" and record["job"] == "preflight" for record in logged)


async def test_with_a_stream_live_the_preflight_runs_no_bandwidth_test_beside_it(tmp_path: Path) -> None:
    from agent.models import UplinkSample

    config = tmp_path / "config.toml"
    # A bandwidth backend that cannot work here: if the preflight started the test, its check would warn.
    config.write_text(f'[logs]\ndir = "{tmp_path / "logs"}"\n[bandwidth]\nbackend = "http"\n')
    agent = Agent(load_settings(config, environ={}), sources=[])
    agent.publish("uplink", UplinkSample(state="ok", rtt_ms=21.0, min_rtt_ms=20.0, delivery_rate_bps=4e6))
    agent.tick()  # the snapshot the preflight starts from (a running agent ticks every second)
    await agent.start()
    try:
        transport = httpx.ASGITransport(app=create_app(agent))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            started = await client.post("/api/v1/preflight", json={"duration_s": 1, "bandwidth": True})
            assert started.status_code == 202
            finished = await agent.jobs.wait("preflight")
            assert finished is not None and finished.ok, finished
            report = (await client.get("/api/v1/preflight")).json()
    finally:
        await agent.stop()
    check = next(check for check in report["checks"] if check["name"] == "bandwidth")
    assert check["status"] == "pass" and "own connection" in check["message"], check
    assert report["bandwidth"] is None

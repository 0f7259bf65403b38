"""POST/GET /api/v1/bandwidth-test against a real bandwidth-server: a job with progress, one at a time,
its result in the snapshot and the metrics; `streamhealth bandwidth --json` prints only the result."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from agent.api.app import create_app
from agent.cli import main
from agent.models import Progress
from agent.runtime import Agent
from agent.settings import load_settings
from tests.peers.bandwidth_server import BandwidthServer, bandwidth_server
from tests.peers.wait import async_wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[BandwidthServer]:
    with bandwidth_server() as running:
        yield running


async def test_bandwidth_test_runs_as_a_job_and_its_result_is_served(server: BandwidthServer) -> None:
    settings = load_settings(
        environ={"STREAMHEALTH_LOGS__ENABLED": "false", "STREAMHEALTH_BANDWIDTH__HTTP_URL": server.url}
    )
    agent = Agent(settings, sources=[])
    progress: list[Progress] = []
    original_emit = agent.emit

    def emit(record: object, event_type: str | None = None) -> None:
        if isinstance(record, Progress):
            progress.append(record)
        original_emit(record, event_type)  # type: ignore[arg-type]

    agent.emit = emit  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        assert (await client.get("/api/v1/bandwidth-test")).status_code == 404

        started = await client.post("/api/v1/bandwidth-test", json={"backend": "http", "duration_s": 2})
        assert started.status_code == 202
        job_id = started.json()["job_id"]
        busy = await client.post("/api/v1/bandwidth-test", json={"backend": "http", "duration_s": 2})
        assert busy.status_code == 409
        assert job_id in busy.json()["detail"]

        await async_wait_until(lambda: agent.jobs.running("bandwidth") is None, 30, "the bandwidth job to finish")
        response = await client.get("/api/v1/bandwidth-test")
        assert response.status_code == 200
        result = response.json()
        assert result["ok"] is True and result["upload_bps"] > 0
        assert result["recommended_video_kbps"] == int(result["upload_bps"] * 0.7 / 1000 - 160)
        assert any(record.step == "upload" and record.job_id == job_id for record in progress)

        snapshot = agent.tick()
        assert snapshot.bandwidth is not None and snapshot.bandwidth.upload_bps == result["upload_bps"]
        metrics = (await client.get("/metrics")).text
        assert 'streamhealth_bandwidth_upload_bytes_per_second{backend="http"}' in metrics

        no_ingest = await client.post("/api/v1/bandwidth-test", json={"backend": "rtmp"})
        assert no_ingest.status_code == 409  # the agent has no ingest configured: its state, not the request
        assert "ingest.primary" in no_ingest.json()["detail"]


def test_cli_json_prints_only_the_result(server: BandwidthServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bandwidth", "--backend", "http", "--url", server.url, "--duration", "2", "--json"])
    out = capsys.readouterr().out
    result = json.loads(out)
    assert code == 0
    assert result["backend"] == "http"
    assert result["upload_bps"] > 0 and result["recommended_video_kbps"] > 0


def test_cli_says_what_to_do_when_no_server_is_configured(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bandwidth", "--backend", "http"])
    captured = capsys.readouterr()
    assert code == 2
    assert "bandwidth.http_url" in captured.err
    assert "Traceback" not in captured.err

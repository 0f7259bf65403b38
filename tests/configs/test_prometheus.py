"""The shipped Prometheus config, rules and Grafana dashboard against a real Prometheus scraping a real agent.

`promtool` checks the config, the rules and the agent's exposition; then Prometheus scrapes the agent
(fed samples as OBS, ffmpeg and the network source would publish them, with an alert active), evaluates
the shipped rules, and every PromQL expression of the rules and the dashboard is run through its HTTP API:
each must parse and return series, so a renamed metric breaks this test, not a team's dashboard.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.models import FfmpegSample, UplinkSample, utc_now
from agent.runtime import Agent
from agent.server import AgentServer
from tests.agent.helpers import make_settings
from tests.peers.prometheus import prometheus, prometheus_available
from tests.peers.wait import async_wait_until
from tests.tui.data import snapshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not prometheus_available()[0], reason=prometheus_available()[1]),
]

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RULES_FILE = CONFIGS / "prometheus" / "streamhealth.rules.yml"
DASHBOARD = CONFIGS / "grafana" / "streamhealth.json"
AGENT_NAME = "studio-pc"


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_the_shipped_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "streamhealth.rules.yml"):
        (tmp_path / name).write_text((CONFIGS / "prometheus" / name).read_text())
    for token_file in ("collector-read-token", "agent-token"):
        (tmp_path / token_file).write_text("token\n")
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = promtool("check", "rules", "streamhealth.rules.yml", cwd=tmp_path)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 15 rules found" in rules.stdout


@pytest.fixture
async def fed_agent(tmp_path: Path) -> AsyncIterator[AgentServer]:
    """A real agent on loopback, fed every second as a streaming OBS, ffmpeg, the network and the uplink (the
    kernel's view of the ingest connection) would feed it."""
    overrides = json.dumps({"cpu_high": {"for_s": 0}})
    settings = make_settings(tmp_path, SAMPLING__INTERVAL_S="0.5", RULES__OVERRIDES=overrides)
    server = AgentServer(settings, Agent(settings, []))
    await server.start()
    feeding = asyncio.create_task(feed(server))
    try:
        yield server
    finally:
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        await server.stop()


UPLINK = UplinkSample(
    state="ok",
    connection="192.0.2.7:1935",
    rtt_ms=24.0,
    min_rtt_ms=18.0,
    rtt_variance_ms=2.0,
    retransmits_total=0,
    unsent_bytes=0,
    unacked_bytes=12_000,
    delivery_rate_bps=3_100_000.0,
    acked_bps=2_600_000,
    congested=False,
)


async def feed(server: AgentServer) -> None:
    base = snapshot(cpu=0.99)  # the CPU rule fires: an alert to see in metrics and annotations
    assert base.obs is not None and base.system is not None and base.network is not None
    target = base.network.targets[0].model_copy(
        update={"rtt_p95_ms_10s": 52.0, "jitter_ms": 4.2, "loss_ratio_10s": 0.0, "dns_ms": 3.0}
    )
    network = base.network.model_copy(update={"targets": [target]})
    for step in range(10_000):
        now = utc_now()
        frames = 60 * step
        server.agent.publish(
            "obs",
            base.obs.model_copy(
                update={
                    "taken_at": now,
                    "frames_output_total": frames,
                    "frames_dropped_network_total": step * 3,
                    "frames_skipped_encoding_total": step,
                    "frames_missed_rendering_total": step // 2,
                }
            ),
        )
        server.agent.publish("system", base.system.model_copy(update={"taken_at": now}))
        server.agent.publish("network", network.model_copy(update={"taken_at": now}))
        server.agent.publish("uplink", UPLINK.model_copy(update={"taken_at": now}))
        server.agent.publish(
            "ffmpeg",
            FfmpegSample(
                taken_at=now, frame=frames, bitrate_bps=2_500_000, drop_frames_total=step, frames_dropped_ratio_10s=0.01
            ),
        )
        await asyncio.sleep(0.5)


async def test_promtool_accepts_the_agents_metrics(fed_agent: AgentServer) -> None:
    async with httpx.AsyncClient(base_url=fed_agent.url) as client:
        await async_wait_until(lambda: fed_agent.agent.snapshot.alerts, 10, "the CPU alert")
        exposition = (await client.get("/metrics")).text
    assert "streamhealth_agent_info{" in exposition
    assert 'streamhealth_stream_bytes_per_second{encoder="obs"}' in exposition
    assert "streamhealth_uplink_acked_bytes_per_second 325000.0" in exposition
    checked = promtool("check", "metrics", stdin=exposition)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    found += [annotation["expr"] for annotation in dashboard["annotations"]["list"]]
    variable = next(item for item in dashboard["templating"]["list"] if item["name"] == "agent")
    found.append(variable["definition"].replace("label_values(", "group by (agent) (").replace(", agent)", ")"))
    return [expr.replace("$__rate_interval", "1m").replace("$agent", ".*") for expr in found]


def rule_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES_FILE.read_text())["groups"])


async def test_every_rule_and_dashboard_expression_returns_series_from_a_real_prometheus(
    fed_agent: AgentServer,
) -> None:
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [streamhealth.rules.yml]
scrape_configs:
  - job_name: streamhealth-agents
    static_configs:
      - targets: ["127.0.0.1:{fed_agent.port}"]
        labels: {{agent: {AGENT_NAME}}}
"""
    rules_text = RULES_FILE.read_text().replace("interval: 5s", "interval: 1s")  # evaluate fast in the test
    recording = [rule for group in rule_groups() for rule in group["rules"] if "record" in rule]
    alerting = [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]
    with prometheus(config, {"streamhealth.rules.yml": rules_text}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

            async def query(expr: str) -> list[Any]:
                answer = (await client.get("/api/v1/query", params={"query": expr})).json()
                assert answer["status"] == "success", f"{expr}: {answer}"
                return list(answer["data"]["result"])

            # rate() over a minute needs a few scrapes of rising counters.
            await async_wait_until(
                lambda: query("streamhealth:frames_dropped:ratio_rate1m"), 40, "the dropped-frame ratio rule"
            )
            for rule in recording:
                result = await query(rule["record"])
                assert result, f"recording rule {rule['record']} has no series"
            for expr in dashboard_expressions():
                result = await query(expr)
                assert result, f"dashboard expression has no series: {expr}"
                assert all(series["metric"].get("agent", AGENT_NAME) == AGENT_NAME for series in result)
            for rule in alerting:
                # The alert's condition may be false on a healthy stream; its measured side must exist.
                measured = re.split(r"\s*(?:>|<|==|>=|<=)\s*[\d.]+\s*$", rule["expr"].strip())[0]
                assert await query(measured), f"alert {rule['alert']} measures nothing: {measured}"
            groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            unhealthy = [
                (rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"] if rule["health"] != "ok"
            ]
            assert not unhealthy
            firing = {rule["name"] for g in groups for rule in g["rules"] if rule.get("state") in ("pending", "firing")}
            assert "StreamhealthCpuHigh" in firing  # the agent's CPU is fed at 99 %
            live = await query("streamhealth:streams_live:count")
            assert float(live[0]["value"][1]) == 1.0

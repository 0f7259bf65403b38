"""/metrics carries the active alerts by kind and severity (a low-cardinality label: kinds are rules')."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import generate_latest

from agent.api.metrics import build_registry
from agent.models import AgentInfo, Alert, HealthSnapshot

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_active_alerts_are_counted_by_kind_and_severity() -> None:
    alerts = [
        Alert(id="cpu_high", kind="cpu_high", severity="critical", message="m", since=NOW),
        Alert(id="encoder_cpu_high", kind="cpu_high", severity="critical", message="m", since=NOW),
        Alert(id="on_wifi", kind="on_wifi", severity="warning", message="m", since=NOW),
    ]
    snapshot = HealthSnapshot(
        taken_at=NOW,
        agent=AgentInfo(version="t", pid=1, started_at=NOW, uptime_s=0, platform="custom"),
        overall="critical",
        sources={},
        alerts=alerts,
    )
    text = generate_latest(build_registry(lambda: snapshot)).decode()
    assert 'streamhealth_alerts_active_by_kind{kind="cpu_high",severity="critical"} 2.0' in text
    assert 'streamhealth_alerts_active_by_kind{kind="on_wifi",severity="warning"} 1.0' in text
    assert 'streamhealth_alerts_active{severity="critical"} 2.0' in text

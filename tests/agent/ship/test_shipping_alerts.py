"""The shipping rules: what the shipper reports becomes alerts naming the reason (configs/rules.toml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.history import History
from agent.models import AgentInfo, HealthSnapshot, ShippingState
from agent.rules.engine import RuleEngine
from agent.settings import load_settings

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def snapshot(at: datetime, **shipping: object) -> HealthSnapshot:
    state: dict[str, object] = {
        "state": "connected",
        "connected": True,
        "collector": "http://collector.test:8766",
        "agent_id": "a1",
        "lines_waiting": 0,
    }
    state.update(shipping)
    return HealthSnapshot(
        taken_at=at,
        agent=AgentInfo(version="t", pid=1, started_at=NOW, uptime_s=1, platform="custom"),
        overall="ok",
        sources={},
        shipping=ShippingState.model_validate(state),
    )


def alerts_after(*snapshots: HealthSnapshot) -> dict[str, tuple[str, str]]:
    engine = RuleEngine.from_settings(load_settings(None, environ={}))
    history = History(capacity=100)
    for one in snapshots:
        engine.evaluate(one, history)
    return {alert.id: (alert.severity, alert.message) for alert in engine.active_alerts()}


def test_lines_deleted_before_shipping_are_a_critical_alert() -> None:
    alerts = alerts_after(snapshot(NOW, unshipped_lines_deleted_total=1200))
    severity, message = alerts["shipping_lines_lost"]
    assert severity == "critical" and "1,200 health log lines were deleted" in message


def test_a_refused_token_and_a_set_aside_batch_name_the_reason() -> None:
    alerts = alerts_after(
        snapshot(
            NOW,
            state="rejected",
            connected=False,
            last_error="the collector refused (401: unknown token); check ship.token",
            batches_set_aside_total=1,
            last_rejected="the collector rejected a batch (400: line 2: no type); kept in ship-rejected/a-1-4.ndjson",
        )
    )
    assert "401: unknown token" in alerts["shipping_refused"][1]
    assert "line 2: no type" in alerts["shipping_batch_set_aside"][1]


def test_a_collector_unreachable_for_five_minutes_is_a_warning_with_the_backlog() -> None:
    alerts = alerts_after(
        snapshot(
            NOW + timedelta(seconds=1),
            state="retrying",
            connected=False,
            lines_waiting=310,
            oldest_waiting_age_s=310.0,
            last_error="collector unreachable: ConnectError",
        )
    )
    severity, message = alerts["shipping_behind"]
    assert severity == "warning" and "310 lines" in message and "ConnectError" in message
    assert "shipping_behind" not in alerts_after(snapshot(NOW, lines_waiting=3, oldest_waiting_age_s=2.0))

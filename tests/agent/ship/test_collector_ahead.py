"""A collector that claims seqs this agent never wrote: said (an alert), and not believed about where to start.

Seen in issue 22: a seq near 2^63 stored under an agent's id by another agent's token made that agent, after
its cursor was lost, skip every line it had (it asked the collector how far it got) while it showed
`connected`, `lines_waiting 0` and no alert.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from agent.history import History
from agent.models import AgentInfo, HealthSnapshot, ShippingState
from agent.rules.engine import RuleEngine
from agent.settings import load_settings
from agent.ship.shipper import Shipper
from tests.agent.ship.test_shipper import LOG, CollectorDouble, run_until, settings, shipper_for
from tests.agent.ship.test_spool import write_log

FORGED_SEQ = 2**63 - 2


async def test_after_losing_its_cursor_an_agent_ships_every_line_when_the_collector_claims_a_forged_seq(
    tmp_path: Path,
) -> None:
    write_log(tmp_path, LOG, range(1, 11))
    collector = CollectorDouble()
    collector.stored[FORGED_SEQ] = b'{"seq":9223372036854775806,"type":"forged"}'
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: all(seq in collector.stored for seq in range(1, 11)), "the 10 lines stored")
    state = shipper.state()
    assert state.collector_last_seq == FORGED_SEQ
    assert state.collector_ahead_by_seqs == FORGED_SEQ - 10  # past the highest seq in this agent's logs
    assert state.lines_waiting == 0 and state.lines_shipped_total == 10


async def test_a_collector_holding_up_to_what_was_sent_raises_nothing(tmp_path: Path) -> None:
    write_log(tmp_path, LOG, range(1, 11))
    collector = CollectorDouble()
    shipper = shipper_for(tmp_path, collector)
    await run_until(shipper, lambda: len(collector.stored) == 10, "10 stored")
    assert shipper.state().collector_ahead_by_seqs == 0 and shipper.state().collector_last_seq == 10


async def test_the_agents_own_count_of_seqs_written_is_the_reference(tmp_path: Path) -> None:
    """Seqs stamped but not yet in a file (the writer's lease) are this agent's: no alert for those."""
    write_log(tmp_path, LOG, range(1, 5))
    collector = CollectorDouble()
    collector.stored[7] = b'{"seq":7,"type":"tick"}'  # stamped by this agent, its file lost with the disk
    shipper = Shipper(
        settings(),
        tmp_path,
        "agent-1",
        transport=httpx.MockTransport(collector.handle),
        jitter=lambda: 0.0,
        seq_written=lambda: 7,
    )
    await run_until(shipper, lambda: shipper.state().collector_last_seq == 7, "the collector's last seq learnt")
    assert shipper.state().collector_ahead_by_seqs == 0
    assert sorted(collector.stored) == [7]  # it started after the collector's last seq, which is its own


def test_the_rule_states_the_collectors_seq_and_how_far_past_this_agent_it_is() -> None:
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    shipping = ShippingState(
        state="connected",
        connected=True,
        collector="http://collector.test:8766",
        agent_id="a1",
        lines_waiting=0,
        collector_last_seq=FORGED_SEQ,
        collector_ahead_by_seqs=FORGED_SEQ - 10,
    )
    snapshot = HealthSnapshot(
        taken_at=now,
        agent=AgentInfo(version="t", pid=1, started_at=now, uptime_s=1, platform="custom"),
        overall="ok",
        sources={},
        shipping=shipping,
    )
    engine = RuleEngine.from_settings(load_settings(None, environ={}))
    engine.evaluate(snapshot, History(capacity=10))
    alerts = {alert.id: alert for alert in engine.active_alerts()}
    alert = alerts["shipping_collector_ahead"]
    assert alert.severity == "warning"
    assert str(FORGED_SEQ) in alert.message and f"{FORGED_SEQ - 10:,}" in alert.message
    healthy = snapshot.model_copy(update={"shipping": shipping.model_copy(update={"collector_ahead_by_seqs": 0})})
    for minute in (5, 6):  # back to 0 and staying there: it clears
        engine.evaluate(healthy.model_copy(update={"taken_at": now.replace(minute=minute)}), History(capacity=10))
    assert "shipping_collector_ahead" not in {alert.id for alert in engine.active_alerts()}

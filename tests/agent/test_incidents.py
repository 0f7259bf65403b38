"""The incident timeline: verdicts the runtime already holds, turned into one timed line per change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from agent.api.app import create_app
from agent.incidents import IncidentLog, alert_headline
from agent.models import RelaySample, UplinkSample
from agent.models.incidents import IncidentList
from agent.models.relay import IngestSwitch, RelayDrops
from agent.runtime import Agent
from tests.agent.helpers import make_settings, system_sample
from tests.agent.test_runtime import ThresholdRules

T0 = datetime(2026, 12, 5, 20, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def uplink(seconds: float, *, congested: bool) -> UplinkSample:
    return UplinkSample(
        taken_at=at(seconds),
        state="congested" if congested else "ok",
        rtt_ms=180.0 if congested else 21.0,
        min_rtt_ms=20.0,
        delivery_rate_bps=1_200_000 if congested else 9_000_000,
        congested=congested,
    )


def relay(seconds: float, **fields: object) -> RelaySample:
    values: dict[str, object] = {"taken_at": at(seconds), "listen": "127.0.0.1:1935", "publishing": True}
    values.update(fields)
    return RelaySample.model_validate(values)


def test_a_hiccup_reads_as_a_timeline_newest_first_with_the_numbers_of_each_moment() -> None:
    incidents = IncidentLog()
    incidents.observe_sample(relay(0))
    incidents.observe_sample(uplink(1, congested=False))
    incidents.observe_sample(uplink(2, congested=True))
    incidents.observe_sample(uplink(2.25, congested=True))  # still slow: no new line
    drops = RelayDrops(until_keyframe=15, disposable=33)
    incidents.observe_sample(relay(3, frames_dropped_per_s=19.0, frames_dropped_total=48, frames_dropped=drops))
    incidents.observe_sample(relay(4, frames_dropped_per_s=None, frames_dropped_total=60))  # no reading: no change
    incidents.observe_sample(relay(5, frames_dropped_per_s=0.0, frames_dropped_total=70))
    incidents.observe_sample(uplink(6, congested=False))
    recent = incidents.recent(at(7))
    assert [incident.kind for incident in recent] == [
        "link_back",
        "relay_drops_ended",
        "relay_dropping",
        "link_slowed",
        "stream_started",
    ]
    assert [incident.at for incident in recent] == [at(6), at(5), at(3), at(2), at(0)]
    assert "1.20 Mb/s" in recent[3].text and "180 ms (base 20 ms)" in recent[3].text
    assert "19 frames/s" in recent[2].text and "inter 15, nonref 33" in recent[2].text
    assert recent[1].text == "relay drops ended: 22 frames in 2 s"


def test_the_encoder_lost_and_held_then_back_or_gone() -> None:
    incidents = IncidentLog()
    incidents.observe_sample(relay(0))
    incidents.observe_sample(relay(10, publishing=False, holding=True, hold_remaining_s=30.0))
    incidents.observe_sample(relay(11, publishing=False, holding=True, hold_remaining_s=29.0))
    incidents.observe_sample(relay(20, holding=False, held_total_s=10.4))
    incidents.observe_sample(relay(30, publishing=False, holding=True, hold_remaining_s=30.0))
    incidents.observe_sample(relay(60, publishing=False, holding=False, held_total_s=40.0))
    kinds = [(incident.kind, incident.severity) for incident in incidents.all()]
    assert kinds == [
        ("hold_ended", "critical"),
        ("encoder_lost", "critical"),
        ("encoder_back", "info"),
        ("encoder_lost", "critical"),
        ("stream_started", "info"),
    ]
    assert "for up to 30 s" in incidents.all()[1].text
    assert "after 10 s on the slate" in incidents.all()[2].text


def test_an_encoder_that_stops_without_a_hold_says_why_no_slate_was_sent() -> None:
    incidents = IncidentLog()
    incidents.observe_sample(relay(0))
    incidents.observe_sample(relay(5, publishing=False, slate_note="disconnect protection is off"))
    newest = incidents.all()[0]
    assert newest.kind == "stream_ended" and "disconnect protection is off" in newest.text


def test_a_switch_is_placed_at_its_own_time_and_the_window_and_bound_hold() -> None:
    incidents = IncidentLog(kept=3)
    incidents.observe_sample(relay(0))
    incidents.observe_sample(uplink(5, congested=True))
    switch = IngestSwitch(
        destination="live.example:1935",
        kind="failover",
        from_ingest="live.example:1935",
        to_ingest="backup.example:1935",
        reason="connection reset",
        lost_at=at(3),
        at=at(4),
        outage_ms=1200,
        lost_media_ms=800,
        lost_frames=24,
    )
    incidents.observe_sample(relay(6, ingest_switches=[switch]))
    assert [incident.kind for incident in incidents.all()] == ["link_slowed", "failover", "stream_started"]
    assert "live.example:1935 → backup.example:1935 after 1.2 s" in incidents.all()[1].text
    incidents.observe_sample(uplink(700, congested=False))
    assert [incident.kind for incident in incidents.all()] == ["link_back", "link_slowed", "failover"]
    assert incidents.total == 4
    assert [incident.kind for incident in incidents.recent(at(710))] == ["link_back"]  # the rest is > 10 min old


async def test_the_runtime_puts_alert_changes_in_the_snapshot_at_the_log_s_time_and_serves_the_run(
    tmp_path: Path,
) -> None:
    agent = Agent(make_settings(tmp_path), [], rules=ThresholdRules())
    lines: list[str] = []
    agent.sinks.append(type("ListSink", (), {"write_line": lambda self, line: lines.append(line)})())
    agent.publish("system", system_sample(cpu=0.95))
    agent.tick()
    agent.publish("system", system_sample(cpu=0.2))
    snapshot = agent.tick()
    assert [incident.kind for incident in snapshot.incidents] == ["alert_cleared", "alert_raised"]
    assert snapshot.incidents[1].text == "CRITICAL alert: CPU 95%"
    logged = [json.loads(line) for line in lines if json.loads(line)["type"] == "alert"]
    assert [datetime.fromisoformat(record["at"]) for record in logged] == [
        incident.at for incident in reversed(snapshot.incidents)
    ]
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        response = await client.get("/api/v1/incidents")
    assert response.status_code == 200
    served = IncidentList.model_validate_json(response.text)
    assert served.incidents == snapshot.incidents and served.let_go == 0


def test_an_alert_incident_says_what_is_wrong_without_the_advice_and_cuts_no_sentence() -> None:
    """The strip is one line per event: the advice stays on the Alerts screen."""
    message = (
        "OBS is not connected: nothing answers at ws://127.0.0.1:4455. Start OBS and enable Tools > WebSocket "
        "Server Settings > Enable WebSocket server, or check sources.obs.url; retrying in 2.8 s"
    )
    assert alert_headline(message) == "OBS is not connected: nothing answers at ws://127.0.0.1:4455"
    assert alert_headline("The relay holds 1.5 s of media (2.1 Mb/s out for 2.6 Mb/s in)") == (
        "The relay holds 1.5 s of media (2.1 Mb/s out for 2.6 Mb/s in)"
    )
    # A first sentence too long for a line is kept whole rather than cut inside it.
    long_sentence = "x " * 80 + "at 1.25 Mb/s. Then the advice."
    assert alert_headline(long_sentence) == long_sentence

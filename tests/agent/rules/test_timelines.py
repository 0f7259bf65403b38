"""Recorded timelines from real OBS runs (tests/fixtures/timelines/, recorded by tests/agent/e2e/
test_alert_trust_obs.py: stream start, healthy, static scene, cut to 1.2 Mbit/s, return) replayed through the
shipped rules, as `streamhealth rules test` does: the alerts' lifecycle is pinned without OBS or a network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.configuration import load_configuration
from agent.logs.reader import read_records
from agent.models import TickRecord
from agent.rules.engine import RuleEngine
from agent.rules.replay import Expectation, Replay, RulesTest, check, replay

TIMELINES = sorted((Path(__file__).parents[2] / "fixtures" / "timelines").glob("*.jsonl"))
UPLINK_KINDS = ["uplink_falling_behind", "upload_headroom", "output_congestion", "frames_dropped_network"]
MACHINE_KINDS = {"rendering_lag", "encoding_lag", "cpu_high", "fps_low"}


def replayed(path: Path) -> tuple[Replay, dict[str, float], RuleEngine]:
    engine = RuleEngine.from_settings(load_configuration(None, environ={}))
    snapshots = [record.snapshot for record in read_records(path) if isinstance(record, TickRecord)]
    phases = json.loads(path.with_suffix(".phases.json").read_text())
    # The phases are seconds since OBS was told to start; the log begins a moment before (the agent first).
    offset = next(s.obs.stream_duration_s or 0.0 for s in snapshots if s.obs is not None and s.obs.streaming)
    first_streaming = next(i for i, s in enumerate(snapshots) if s.obs is not None and s.obs.streaming)
    lead_s = (snapshots[first_streaming].taken_at - snapshots[0].taken_at).total_seconds() - offset
    return replay(snapshots, engine), {name: at + lead_s for name, at in phases.items()}, engine


def test_the_timelines_are_there() -> None:
    names = {path.stem for path in TIMELINES}
    assert {"obs-direct", "obs-relay"} <= names, f"recorded timelines missing: {names}"


@pytest.mark.parametrize("path", TIMELINES, ids=[path.stem for path in TIMELINES])
def test_a_recorded_obs_run_alerts_only_while_the_link_is_short(path: Path) -> None:
    result, phase, engine = replayed(path)
    kinds = {rule.name: rule.kind for rule in engine.rules}
    link_kinds = sorted(set(kinds.values()) - MACHINE_KINDS)
    expectations = RulesTest(
        expect=[
            # Phases are placed on the log's clock to within a tick (a second): the windows keep that margin.
            Expectation(quiet_between_s=(phase["start"] + 15, phase["cut"] - 1), kinds=link_kinds),
            Expectation(quiet_between_s=(phase["static"], phase["moving"]), kinds=UPLINK_KINDS),
        ]
        + [
            Expectation(alert=alert_id, cleared_by_s=phase["return"] + 10)
            for alert_id in {event.alert.id for event in result.events}
            if kinds[alert_id] not in MACHINE_KINDS
        ]
    )
    assert check(result, expectations, kinds) == []
    early = [
        event.at_s - phase["cut"]
        for event in result.events
        if event.change == "raised" and event.alert.kind == "uplink_falling_behind" and event.at_s >= phase["cut"] - 1
    ]
    # The health log holds one snapshot a second: the live agent judges the uplink between ticks too.
    assert early and min(early) <= 2.0, early
    shown = [
        int(suggestion.text.split()[5])
        for event in result.events
        # A tick is a second: the one at the return may already see the freed link (OBS flushing its buffer).
        if phase["cut"] - 1 <= event.at_s <= phase["return"] - 1
        for suggestion in event.alert.suggestions
        if suggestion.text.startswith("Lower the video bitrate to ")
    ]
    assert shown and all(600 <= kbps <= 950 for kbps in shown), shown

"""A stream that goes nowhere is an alert: the encoder publishing to the relay while, for more than
relay.stall_s, no destination is live or trying to connect (issue 25: a dead task, and no alert said so)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.models import RelaySample
from agent.relay.going_nowhere import GoingNowhere
from agent.relay.settings import RelaySettings
from agent.relay.source import RelaySource
from agent.rules.config import load_rule_set
from agent.rules.engine import RuleEngine
from agent.settings import IngestSettings, load_settings
from tests.agent.rules.feed import Feed, rule_set


@dataclass
class _Destination:
    name: str
    state: str
    last_error: str | None = None


def test_it_holds_only_past_stall_s_while_publishing_with_no_destination_trying() -> None:
    watch = GoingNowhere(stall_s=3.0)
    dead = [_Destination("a:1935", "idle", "the relay's task for this ingest ended (ValueError: x)")]
    assert watch.observe(True, dead, 100.0) is None
    assert watch.observe(True, dead, 103.0) is None  # not more than stall_s yet
    reason = watch.observe(True, dead, 103.5)
    assert reason == ("for 4 s no destination is live or connecting: a:1935 idle "
                      "(the relay's task for this ingest ended (ValueError: x))")  # fmt: skip
    assert watch.observe(False, dead, 104.0) is None  # the encoder stopped: nothing goes nowhere
    assert watch.observe(True, dead, 105.0) is None  # and the clock starts again


def test_one_destination_live_connecting_or_between_attempts_is_somewhere() -> None:
    for state in ("live", "connecting", "retrying"):
        watch = GoingNowhere(stall_s=1.0)
        destinations = [_Destination("a:1935", "rejected", "key refused"), _Destination("b:1935", state)]
        assert all(watch.observe(True, destinations, t) is None for t in (0.0, 5.0, 60.0))


def test_the_relay_sample_carries_it_when_the_destination_task_is_gone() -> None:
    clock = [1000.0]
    source = RelaySource(
        RelaySettings(stall_s=2.0), IngestSettings(primary="rtmp://127.0.0.1:1/live/k"), interval_s=1.0,
        clock=lambda: clock[0],
    )  # fmt: skip
    source.relay.ingress.stream_started("FMLE/3.0")
    destination = source.relay.destinations[0]
    destination.task_ended("ValueError: negative file descriptor")  # its task ended: idle, not trying
    samples: list[RelaySample] = []
    for now in (1000.0, 1001.0, 1002.5):
        clock[0] = now
        samples.append(source.sample())
    assert [s.going_nowhere for s in samples] == [False, False, True]
    reason = samples[-1].going_nowhere_reason or ""
    assert "127.0.0.1:1 idle" in reason and "negative file descriptor" in reason
    assert source.supervisor is source.relay.supervisor  # what the runtime adopts


def test_the_shipped_rule_raises_it_critical_with_the_reason_and_clears_when_it_ends() -> None:
    rules = [r for r in load_rule_set(load_settings(environ={})).rules if r.name == "relay_going_nowhere"]
    feed = Feed(RuleEngine(rule_set(*rules)))
    nowhere = RelaySample(listen="127.0.0.1:1935", publishing=True, going_nowhere=True,
                          going_nowhere_reason="for 4 s no destination is live or connecting: a:1935 idle")  # fmt: skip
    moving = RelaySample(listen="127.0.0.1:1935", publishing=True)
    [raised] = feed.step(0, relay=nowhere)
    assert raised.change == "raised" and raised.alert.severity == "critical"
    assert raised.alert.message == ("The encoder is publishing to the relay but the stream goes nowhere: "
                                    "for 4 s no destination is live or connecting: a:1935 idle")  # fmt: skip
    assert feed.step(1, relay=moving) == []  # clear_for_s = 2
    [cleared] = feed.step(3.5, relay=moving)
    assert cleared.change == "cleared"

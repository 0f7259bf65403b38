"""The notification policy as a pure state machine: what reaches one webhook, and when."""

from __future__ import annotations

from datetime import timedelta

from agent.models import Alert, AlertChange, utc_now
from agent.notify.policy import Notification, WebhookPolicy


def change(
    kind: str, alert_id: str = "rtt_high:ingest", severity: str = "warning", alert_kind: str = "rtt"
) -> AlertChange:
    alert = Alert(
        id=alert_id,
        kind=alert_kind,
        severity=severity,  # type: ignore[arg-type]
        message=f"RTT to the ingest is 240 ms ({alert_id})",
        since=utc_now() - timedelta(seconds=30),
        cleared_at=utc_now() if kind == "cleared" else None,
    )
    return AlertChange(change=kind, alert=alert)  # type: ignore[arg-type]


def test_changes_within_the_group_window_go_out_as_one_message_after_it() -> None:
    policy = WebhookPolicy(group_s=5)
    assert policy.offer(change("raised", "a"), 0.0)
    assert policy.offer(change("raised", "b", severity="critical"), 1.0)
    assert policy.take(4.9) is None
    message = policy.take(5.0)
    assert message is not None
    assert [line.alert.id for line in message.changes] == ["b", "a"]  # most severe first
    assert policy.take(100.0) is None


def test_a_flapping_alert_folds_into_few_messages_that_say_it_flaps() -> None:
    policy = WebhookPolicy(group_s=5, max_per_minute=2)
    sent: list[tuple[float, Notification]] = []
    for step in range(160):  # 80 s in 0.5 s steps; raised and cleared every 1.5 s for the first 30 s
        now = step * 0.5
        if step % 3 == 0 and now < 30:
            policy.offer(change("raised" if step % 6 == 0 else "cleared"), now)
        message = policy.take(now)
        if message is not None:
            sent.append((now, message))
    assert len([at for at, _ in sent if at < 60]) == 2  # 20 changes, 2 messages a minute at most
    assert len(sent) == 3
    assert sum(message.changes_folded_total for _, message in sent) == 20  # every change accounted for
    assert all(message.changes[0].flapping for _, message in sent)
    assert sent[-1][1].changes[0].kind == "cleared"


def test_the_rate_limit_holds_messages_and_folds_them_into_the_next() -> None:
    policy = WebhookPolicy(group_s=0, max_per_minute=3)
    for index in range(10):
        policy.offer(change("raised", f"alert{index}"), index * 1.0)
        policy.take(index * 1.0)
    assert policy.due_at() is not None and policy.due_at() >= 60.0  # type: ignore[operator]
    later = policy.take(60.0)
    assert later is not None
    assert len(later.changes) == 7


def test_a_channel_for_critical_hears_of_a_warning_only_once_it_turns_critical() -> None:
    policy = WebhookPolicy(min_severity="critical", group_s=0)
    assert not policy.offer(change("raised", severity="warning"), 0.0)
    assert policy.take(0.0) is None
    assert policy.offer(change("updated", severity="critical"), 1.0)
    message = policy.take(1.0)
    assert message is not None and message.changes[0].kind == "raised"
    assert policy.offer(change("cleared", severity="critical"), 2.0)
    cleared = policy.take(2.0)
    assert cleared is not None and cleared.changes[0].kind == "cleared"


def test_an_update_is_news_only_when_it_gets_worse() -> None:
    policy = WebhookPolicy(group_s=0)
    policy.offer(change("raised", severity="warning"), 0.0)
    assert policy.take(0.0) is not None
    assert not policy.offer(change("updated", severity="warning"), 1.0)
    assert policy.offer(change("updated", severity="critical"), 2.0)
    message = policy.take(2.0)
    assert message is not None and message.changes[0].kind == "escalated"


def test_a_clear_of_an_alert_the_channel_never_heard_of_is_not_sent() -> None:
    policy = WebhookPolicy(kinds=frozenset({"cpu_high"}), group_s=0)
    assert not policy.offer(change("raised", alert_kind="rtt"), 0.0)
    assert not policy.offer(change("cleared", alert_kind="rtt"), 1.0)
    assert policy.take(5.0) is None


def test_without_clears_a_raise_and_clear_in_one_window_still_says_what_happened() -> None:
    policy = WebhookPolicy(send_cleared=False, group_s=5)
    policy.offer(change("raised", "a"), 0.0)
    assert policy.take(5.0) is not None
    assert not policy.offer(change("cleared", "a"), 10.0)  # announced, clears not wanted
    assert policy.take(20.0) is None
    policy.offer(change("raised", "b"), 30.0)
    policy.offer(change("cleared", "b"), 31.0)
    message = policy.take(35.0)
    assert message is not None
    assert message.changes[0].kind == "cleared" and message.changes[0].changes_folded == 2

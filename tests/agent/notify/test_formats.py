"""Webhook bodies: Slack's and Discord's formats, and our own contract."""

from __future__ import annotations

from datetime import timedelta

from agent.models import Alert, AlertNotification, Suggestion, utc_now
from agent.notify.formats import discord_body, generic_body, slack_body
from agent.notify.policy import Notification, NotifiedChange


def alert(alert_id: str = "uplink", severity: str = "critical", cleared: bool = False) -> Alert:
    since = utc_now() - timedelta(seconds=135)
    return Alert(
        id=alert_id,
        kind="uplink_congested",
        severity=severity,  # type: ignore[arg-type]
        message="The uplink carries 1.1 Mbit/s of the 2.6 Mbit/s stream <@everyone>",
        since=since,
        cleared_at=utc_now() if cleared else None,
        suggestions=[Suggestion(text="Lower the video bitrate to 900 kbps", why="the link carried 1.1 Mbit/s")],
    )


def test_slack_gets_escaped_mrkdwn_with_the_numbers_and_the_first_step() -> None:
    body = slack_body(Notification([NotifiedChange("raised", alert())]), "studio-pc")
    text = body["text"]
    assert "studio-pc" in text
    assert ":red_circle: CRITICAL (raised): The uplink carries 1.1 Mbit/s of the 2.6 Mbit/s stream" in text
    assert "&lt;@everyone&gt;" in text and "<@everyone>" not in text
    assert "→ Lower the video bitrate to 900 kbps" in text


def test_a_cleared_line_says_how_long_the_alert_lasted_and_gives_no_step() -> None:
    body = slack_body(Notification([NotifiedChange("cleared", alert(cleared=True))]), "studio-pc")
    assert ":white_check_mark: cleared:" in body["text"]
    assert "lasted 2 min 15 s" in body["text"]
    assert "→" not in body["text"]


def test_a_flapping_line_says_so_with_the_count_and_the_span() -> None:
    line = NotifiedChange("cleared", alert(cleared=True), changes_folded=7, first_change_at_s=0, last_change_at_s=95)
    text = slack_body(Notification([line]), "pc")["text"]
    assert "changed 7 times in the last 1 min 35 s" in text


def test_discord_caps_embeds_and_never_pings_anyone() -> None:
    lines = [NotifiedChange("raised", alert(f"a{index}")) for index in range(13)]
    body = discord_body(Notification(lines), "studio-pc")
    assert len(body["embeds"]) == 10
    assert "and 3 more changes" in body["content"]
    assert body["allowed_mentions"] == {"parse": []}
    assert body["embeds"][0]["color"] == 0xD83C3E


def test_the_generic_body_is_our_contract_and_round_trips() -> None:
    body = generic_body(Notification([NotifiedChange("escalated", alert())]), "pc")
    parsed = AlertNotification.model_validate_json(body.model_dump_json())
    assert parsed.type == "streamhealth.alerts"
    assert parsed.alerts[0].change == "escalated"
    assert parsed.alerts[0].first_step == "Lower the video bitrate to 900 kbps"
    assert parsed.alerts[0].summary.startswith("CRITICAL (worse):")

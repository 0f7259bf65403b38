"""The bodies webhooks take: our generic JSON, Slack's and Discord's incoming-webhook formats.

Pure functions of a `Notification`. Every line says what is wrong with its numbers and the backup plan's
first step, because the person reading it on a phone has to act on that line alone. Text comes from alerts
that were redacted when the agent emitted them; nothing here adds a secret.
"""

from __future__ import annotations

from typing import Any

from agent.models import AlertNotification, NotifiedAlert
from agent.models.base import utc_now
from agent.notify.policy import Notification, NotifiedChange
from agent.notify.settings import WebhookFormat

DISCORD_MAX_EMBEDS = 10
DISCORD_DESCRIPTION_MAX = 4000
SLACK_TEXT_MAX = 3500  # Slack truncates a message's text past about 4,000 characters
_SEVERITY_WORD = {"critical": "CRITICAL", "warning": "WARNING"}
_DISCORD_COLOUR = {"critical": 0xD83C3E, "warning": 0xE8A317, "cleared": 0x2EB67D}
_SLACK_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "cleared": ":white_check_mark:"}


def render(format_name: WebhookFormat, notification: Notification, agent_name: str) -> dict[str, Any]:
    if format_name == "slack":
        return slack_body(notification, agent_name)
    if format_name == "discord":
        return discord_body(notification, agent_name)
    return generic_body(notification, agent_name).model_dump(mode="json")


def generic_body(notification: Notification, agent_name: str) -> AlertNotification:
    return AlertNotification(
        agent_name=agent_name,
        sent_at=utc_now(),
        alerts=[
            NotifiedAlert(
                change=line.kind,
                alert=line.alert,
                changes_folded=line.changes_folded,
                span_s=round(line.span_s, 1),
                summary=headline(line),
                first_step=first_step(line),
            )
            for line in notification.changes
        ],
    )


def headline(line: NotifiedChange) -> str:
    """One line a person reads first: state, severity, what is wrong, and whether it keeps coming back."""
    alert = line.alert
    if line.kind == "cleared":
        text = f"cleared: {alert.message}"
        if alert.cleared_at is not None:
            text += f" (lasted {_duration((alert.cleared_at - alert.since).total_seconds())})"
    else:
        verb = "worse" if line.kind == "escalated" else "raised"
        text = f"{_SEVERITY_WORD[alert.severity]} ({verb}): {alert.message}"
    if line.flapping:
        text += f" — changed {line.changes_folded} times in the last {_duration(line.span_s)}, the link is flapping"
    return text


def first_step(line: NotifiedChange) -> str | None:
    if line.kind == "cleared" or not line.alert.suggestions:
        return None
    return line.alert.suggestions[0].text


def slack_body(notification: Notification, agent_name: str) -> dict[str, Any]:
    lines = [f"*streamhealth on {agent_name}*"]
    for line in notification.changes:
        icon = _SLACK_ICON["cleared" if line.kind == "cleared" else line.alert.severity]
        lines.append(f"{icon} {_slack_escape(headline(line))}")
        step = first_step(line)
        if step:
            lines.append(f"    → {_slack_escape(step)}")
    return {"text": _clip("\n".join(lines), SLACK_TEXT_MAX)}


def discord_body(notification: Notification, agent_name: str) -> dict[str, Any]:
    embeds = []
    shown = notification.changes[:DISCORD_MAX_EMBEDS]
    for line in shown:
        description = headline(line)
        step = first_step(line)
        if step:
            description += f"\n→ {step}"
        embeds.append(
            {
                "title": line.alert.kind,
                "description": _clip(description, DISCORD_DESCRIPTION_MAX),
                "color": _DISCORD_COLOUR["cleared" if line.kind == "cleared" else line.alert.severity],
            }
        )
    content = f"streamhealth on {agent_name}"
    hidden = len(notification.changes) - len(shown)
    if hidden:
        content += f" (and {hidden} more changes: see the agent's Alerts screen)"
    # Discord would ping @everyone or a role named in the text; alerts must never do that.
    return {"content": content, "embeds": embeds, "allowed_mentions": {"parse": []}}


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters (links and mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"

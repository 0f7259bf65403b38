"""The Alerts screen: active alerts by severity with their numbers, age and backup plans, then
cleared ones. Acknowledging keeps an alert listed, marked, until it is raised again."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from agent.models import Alert
from tui.render import alert_duration, badge, fmt_duration
from tui.screens.base import DashboardScreen


def alert_prompt(alert: Alert, now: datetime, acknowledged: bool) -> Group:
    head = Text()
    if alert.active:
        head.append_text(badge(alert.severity, "CRITICAL" if alert.severity == "critical" else "WARNING"))
        head.append(f" for {alert_duration(alert, now)}", style="bold")
    else:
        head.append_text(badge("nodata", "CLEARED"))
        head.append(
            f" lasted {alert_duration(alert, now)}, cleared {fmt_duration((now - alert.cleared_at).total_seconds()) if alert.cleared_at else '?'} ago",
            style="dim",
        )
    if acknowledged:
        head.append("  ✓ ACKNOWLEDGED", style="bold cyan")
    lines = [head, Text(alert.message, style="bold" if alert.active else "")]
    if alert.value is not None and alert.threshold is not None:
        lines.append(Text(f"measured {alert.value:g}, threshold {alert.threshold:g}", style="dim"))
    if alert.active:
        for suggestion in alert.suggestions:
            plan = Text("  → ")
            plan.append(suggestion.text)
            if suggestion.automatic:
                plan.append(" [AUTO]", style="bold magenta")
            lines.append(plan)
            lines.append(Text(f"     {suggestion.why}", style="dim"))
        if not alert.suggestions:
            lines.append(Text("  no backup plan for this alert", style="dim italic"))
    lines.append(Text(""))  # a blank line between alerts
    return Group(*lines)


class AlertsScreen(DashboardScreen):
    BINDINGS = [
        Binding("a,space", "acknowledge", "Acknowledge"),
        Binding("A", "acknowledge_all", "Ack all"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield OptionList(id="alert-list")
        yield from self.compose_footer()

    def redraw(self) -> None:
        option_list = self.query_one(OptionList)
        highlighted = option_list.highlighted_option.id if option_list.highlighted_option is not None else None
        active, cleared = self.state.sorted_alerts()
        now = self.state.clock()
        options: list[Option] = []
        if not active:
            options.append(
                Option(
                    Text("No active alert. Everything the agent checks is within limits.", style="green"),
                    id="-none",
                    disabled=True,
                )
            )
        options.extend(
            Option(alert_prompt(alert, now, alert.id in self.state.acknowledged), id=alert.id) for alert in active
        )
        if cleared:
            options.append(Option(Text(f"── Cleared ({len(cleared)}) ──", style="dim"), id="-cleared", disabled=True))
            options.extend(
                Option(alert_prompt(alert, now, alert.id in self.state.acknowledged), id=alert.id) for alert in cleared
            )
        option_list.set_options(options)
        ids = [option.id for option in options]
        if highlighted in ids:
            option_list.highlighted = ids.index(highlighted)
        elif active:
            option_list.highlighted = ids.index(active[0].id)

    def action_acknowledge(self) -> None:
        option = self.query_one(OptionList).highlighted_option
        if option is None or option.id is None or option.id.startswith("-"):
            self.notify("Choose an alert first (arrow keys or the mouse).", severity="warning")
            return
        self.shapp.acknowledge(option.id)

    def action_acknowledge_all(self) -> None:
        for alert in self.state.unacknowledged_active():
            self.shapp.acknowledge(alert.id)

"""The fleet TUI (`streamhealth tui --collector URL`): the Fleet screen, and any agent's Live screen through it.

It is the agent dashboard app with the fleet in front: the collector's fleet is polled into
`fleet_view`; Enter points the app's agent client at the collector's forwarding of that agent
(`/api/v1/agents/{id}/...`), so the Live and Alerts screens render unchanged; Escape goes back. Fleet
alerts (an agent losing contact) ring and toast once when raised, and once more when it is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from textual.app import SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen

from agent.models import utc_now
from collector.models import FleetView
from tui.app import StreamHealthApp
from tui.client import AgentClient
from tui.fleet_client import FleetClient, FleetReceived, FleetUnreachable
from tui.screens.alerts import AlertsScreen
from tui.screens.fleet import FleetScreen
from tui.screens.live import LiveScreen
from tui.state import DashboardState

GROUP_ABOVE = 3  # more agents than this changing at once (a network split, a collector restart): one toast


def _some(alert_ids: list[str], names: dict[str, str]) -> str:
    shown = [names.get(alert_id.partition(":")[2], alert_id.partition(":")[2]) for alert_id in alert_ids[:3]]
    more = f" and {len(alert_ids) - 3} more" if len(alert_ids) > 3 else ""
    return ", ".join(shown) + more + (" are" if len(alert_ids) > 1 else " is")


class AgentLiveScreen(LiveScreen):
    """One agent's Live screen, opened from the fleet."""

    BINDINGS = [
        Binding("escape", "app.close_agent", "Fleet"),
        Binding("a", "app.agent_alerts", "Alerts"),
    ]


class AgentAlertsScreen(AlertsScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]


class FleetApp(StreamHealthApp, inherit_bindings=False):
    MODES = {"fleet": FleetScreen}
    DEFAULT_MODE = "fleet"
    BINDINGS = [
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    fleet_revision: var[int] = var(0, init=False)

    def __init__(
        self,
        fleet: FleetClient,
        *,
        clock: Callable[[], datetime] = utc_now,
        collector_label: str = "",
        poll: bool = True,
    ) -> None:
        super().__init__(fleet.agent_client(""), clock=clock, follow_events=False)
        self.fleet = fleet
        self.collector_label = collector_label or f"collector {fleet.base_url}"
        self.poll = poll
        self.fleet_view: FleetView | None = None
        self.fleet_problem: str | None = None
        self.open_agent_id: str | None = None
        self._clock = clock
        self._fleet_at: datetime | None = None
        self._lost: set[str] = set()

    def on_mount(self) -> None:
        self.fleet.attach(self.post_message)
        if self.poll:
            self.run_worker(self.fleet.run_polls(), name="fleet", group="fleet", exclusive=True)
            self.set_interval(self.refresh_interval_s, self._refresh_ages)

    async def on_unmount(self) -> None:
        await self.fleet.aclose()
        await super().on_unmount()

    def fleet_age_s(self) -> float | None:
        return None if self._fleet_at is None else (self._clock() - self._fleet_at).total_seconds()

    # --- the fleet -------------------------------------------------------------------------------

    def on_fleet_received(self, message: FleetReceived) -> None:
        self.fleet_view, self.fleet_problem = message.view, None
        self._fleet_at = self._clock()  # the app's clock: fixed in tests, so snapshots do not move
        self._announce(message.view)
        self.fleet_revision += 1

    def on_fleet_unreachable(self, message: FleetUnreachable) -> None:
        self.fleet_problem = f"{message.detail}; retrying in {message.retry_in_s:g} s"
        self.fleet_revision += 1

    def _announce(self, view: FleetView) -> None:
        """One ring and one toast per change of the lost set; many agents at once make one toast, not 500."""
        lost = {alert.id: alert for alert in view.alerts if alert.kind == "lost_contact"}
        names = {row.agent_id: row.name for row in view.agents}
        raised = sorted(lost.keys() - self._lost)
        back = sorted(self._lost - lost.keys())
        if raised:
            self.bell()
            if len(raised) <= GROUP_ABOVE:
                for alert_id in raised:
                    self.notify(lost[alert_id].message, title="Lost contact", severity="error", timeout=10)
            else:
                self.notify(
                    f"{len(raised)} agents stopped reporting: {_some(raised, names)}",
                    title="Lost contact",
                    severity="error",
                    timeout=10,
                )
        if back:
            self.notify(f"{_some(back, names)} reporting again", title="Contact back", timeout=6)
        self._lost = set(lost)

    # --- one agent through the collector ---------------------------------------------------------

    def on_fleet_screen_open_agent(self, message: FleetScreen.OpenAgent) -> None:
        self.open_agent(message.agent_id, message.name)

    def open_agent(self, agent_id: str, name: str) -> None:
        self._let_go(self.client)
        client = self.fleet.agent_client(agent_id)
        self.client = client
        # Messages of a client we left behind must not land in the new agent's state.
        client.attach(lambda message: self.post_message(message) if self.client is client else None)
        self.state = DashboardState(self._clock)
        self.agent_label = f"{name} via {self.fleet.base_url}"
        self.open_agent_id = agent_id
        self.run_worker(client.run_events(), name="events", group="events", exclusive=True)
        self.push_screen(AgentLiveScreen())

    def _let_go(self, client: AgentClient) -> None:
        """Stop following an agent and close its connections (in the background: closing awaits)."""
        self.workers.cancel_group(self, "events")
        self.run_worker(client.aclose(), group="closing")

    def action_close_agent(self) -> None:
        self.workers.cancel_group(self, "events")
        self.open_agent_id = None
        while len(self.screen_stack) > 1 and not isinstance(self.screen, FleetScreen):
            self.pop_screen()

    def action_agent_alerts(self) -> None:
        if self.open_agent_id is not None:
            self.push_screen(AgentAlertsScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("Fleet", "Every agent, the one in trouble on top", self.action_close_agent)
        yield SystemCommand("Toggle light / dark theme", "Switch the colour theme", self.action_toggle_theme)
        yield SystemCommand("Quit", "Leave the fleet view", self.exit)


def build_fleet_app(
    fleet: FleetClient, *, clock: Callable[[], datetime] = utc_now, collector_label: str = "", poll: bool = True
) -> FleetApp:
    """Tests pass a fixed clock and `poll=False`, then feed the fleet client."""
    return FleetApp(fleet, clock=clock, collector_label=collector_label, poll=poll)

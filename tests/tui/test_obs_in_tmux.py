"""End to end as a technician sees it: a real OBS Studio (Xvfb, x264) streams through the agent's relay to
nginx-rtmp in a network namespace; the TUI runs in tmux at 130x40 and is read with capture-pane, twice a
second, for the whole run. The path is cut to a third of the stream's rate (tc tbf), restored, then OBS is
killed with SIGKILL. The Live screen holds (HOLDING with a countdown, on the slate), the incident strip lists
what happened newest first, and every line the strip or the History screen showed has a time within a second
of the agent's own log: its text log (each incident as it was noted; the relay's own words when it saw the
encoder publish and go) and its health log (the ticks that first showed the relay dropping, no longer
dropping and holding; the alert records).

OBS under Xvfb may miss rendered frames as it starts, a real alert of its own, and a loaded machine raises
the CPU alert: nothing here expects a quiet start, only that the relay neither drops nor holds before the cut.
The screens read are printed (pytest -s shows them): look at them as a technician would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.incidents import alert_headline
from agent.models.incidents import Incident
from agent.server import AgentServer
from agent.settings import load_settings
from tests.peers.netns import NetnsHost
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.obs_studio import ObsStudio, connect
from tests.peers.tmux import TmuxPane, tmux_available, tmux_pane
from tests.peers.wait import async_wait_until, free_port

pytestmark = [pytest.mark.integration, pytest.mark.root]

REPO = Path(__file__).resolve().parents[2]
SIZE = (130, 40)
KEY = "tui-e2e-key"
# A strip row in its box: "│ 12:04:18 !! encoder lost: the relay holds ...  │"; continuation rows have no time.
# A toast over the strip ends the row early at its "▌": the time and the first words still read.
STRIP_ROW = re.compile(r"│ (\d\d:\d\d:\d\d) (?:!!|! | {2}) ([^▌│]*?)\s*[▌│]")
HISTORY_ROW = re.compile(r"^ (\d\d:\d\d:\d\d) (?:!!|! | {2}) (.*?)\s*[▁-█]*$")
SLACK_S = 1.0  # the promise: each time within 1 s of the agent's log


@dataclass(frozen=True)
class Row:
    shown: str  # HH:MM:SS (UTC), as the screen shows it
    text: str  # the words the screen shows on that row (the first row of a long incident)


@pytest.fixture
def ingest(netns_host: NetnsHost) -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    with nginx_rtmp(host=netns_host.address, netns_exec=netns_host.exec_args()) as server:
        yield server


# --- reading the screen ----------------------------------------------------------------------------


def strip_rows(screen: str) -> list[Row]:
    """Each incident the Live screen's strip shows, top (newest) to bottom."""
    return [Row(*match.group(1, 2)) for line in screen.splitlines() if (match := STRIP_ROW.search(line))]


def index_of(rows: list[Row], start: str) -> int:
    return next((i for i, row in enumerate(rows) if row.text.startswith(start)), -1)


def drawn_size(screen: str) -> tuple[int, int]:
    """The columns and rows the TUI drew on: its widest line (the strip's box ends one column from the edge)
    and its last line (the footer)."""
    lines = screen.splitlines()
    drawn = [i for i, line in enumerate(lines) if line.strip()]
    return max(len(line) for line in lines) + 1, (drawn[-1] + 1 if drawn else 0)


async def wait_for_screen(pane: TmuxPane, test: Callable[[str], bool], timeout_s: float, what: str) -> str:
    """The screen once `test` holds; the screen as it was when it did not, in the failure."""
    try:
        await async_wait_until(lambda: test(pane.capture()), timeout_s, what, interval_s=0.2)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; the screen:\n{pane.capture()}") from None
    return pane.capture()


class StripWatch:
    """Reads the screen twice a second, as a technician glancing at it: keeps every strip row seen, and
    every glance whose strip was not newest first."""

    def __init__(self, pane: TmuxPane) -> None:
        self.pane = pane
        self.seen: list[Row] = []
        self.glances = 0
        self.out_of_order: list[str] = []

    async def run(self) -> None:
        while True:
            screen = await asyncio.to_thread(self.pane.capture)
            rows = strip_rows(screen)
            now = datetime.now(UTC)
            times = [second_of(row.shown, now) for row in rows]
            if times != sorted(times, reverse=True):
                self.out_of_order.append(screen)
            self.seen.extend(row for row in rows if row not in self.seen)
            self.glances += 1
            await asyncio.sleep(0.5)


async def read_history(pane: TmuxPane) -> tuple[datetime, str, list[Row]]:
    """The History screen's incident list, paged through to its end: (when it was asked for, its heading,
    its rows, newest first)."""
    pane.send_keys("4")
    await wait_for_screen(pane, lambda s: "Stream sessions" in s, 15, "the History screen")
    asked_at = datetime.now(UTC)
    pane.send_keys("i")
    screen = await wait_for_screen(pane, lambda s: "Incidents since the agent started" in s, 15, "the incidents")
    print(f"--- History, i ---\n{screen}")
    heading = next(line for line in screen.splitlines() if "Incidents since the agent started" in line)
    pane.send_keys("Tab")  # from the sessions table to the incident list, which scrolls
    rows = history_rows(screen)
    for _ in range(30):
        before = incident_box(pane.capture())
        pane.send_keys("PageDown")

        def moved(before: list[str] = before) -> bool:
            return incident_box(pane.capture()) != before

        try:  # the end of the list: the box no longer moves (given time to, on a loaded machine)
            await async_wait_until(moved, 5, "the list to scroll", interval_s=0.2)
        except TimeoutError:
            break
        page = history_rows(pane.capture())
        overlap = next(n for n in range(min(len(rows), len(page)), -1, -1) if rows[len(rows) - n :] == page[:n])
        rows += page[overlap:]
    return asked_at, heading, rows


def incident_box(screen: str) -> list[str]:
    """The History screen's lower box: the lines under its rule (the header's countdown moves on its own)."""
    lines = screen.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("─" * 20)), len(lines))
    return lines[rule + 1 : -1]


def history_rows(screen: str) -> list[Row]:
    below = screen.split("Incidents since the agent started", 1)[-1]
    return [Row(*match.group(1, 2)) for line in below.splitlines() if (match := HISTORY_ROW.match(line))]


# --- reading the agent's log -----------------------------------------------------------------------


def health_log(logs: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted(logs.glob("*.jsonl")) for line in path.read_text().splitlines()]


def first_tick(
    records: list[dict[str, object]], test: Callable[[dict[str, object]], bool], after: datetime
) -> tuple[datetime, datetime]:
    """The first tick after `after` whose relay figures pass `test`, and the tick before it: the health log
    writes one a second, so what it shows happened between the two."""
    before = after
    for record in records:
        if record.get("type") != "tick":
            continue
        snapshot: dict[str, object] = record["snapshot"]  # type: ignore[assignment]
        at = datetime.fromisoformat(str(snapshot["taken_at"]))
        relay: dict[str, object] | None = snapshot.get("relay")  # type: ignore[assignment]
        if at > after and relay and test(relay):
            return before, at
        before = at
    raise AssertionError("no such tick in the health log")


def logged_at(caplog: pytest.LogCaptureFixture, logger: str, pattern: str) -> datetime:
    """When the agent's text log (`logger`) first said something matching `pattern` (from its start)."""
    for record in caplog.records:
        if record.name == logger and re.match(pattern, record.getMessage()):
            return datetime.fromtimestamp(record.created, UTC)
    raise AssertionError(f"the agent never logged {pattern!r} ({logger})")


def second_of(shown: str, near: datetime) -> datetime:
    """The screen's HH:MM:SS (UTC) as the start of that second, on the day that puts it nearest `near`."""
    hours, minutes, seconds = (int(part) for part in shown.split(":"))
    at = near.astimezone(UTC).replace(hour=hours, minute=minutes, second=seconds, microsecond=0)
    return min((at + timedelta(days=days) for days in (-1, 0, 1)), key=lambda day: abs(day - near))


def log_offset_s(shown: str, logged: datetime) -> float:
    """The logged time less the start of the second the screen shows: 0 to 1 when it falls in that second."""
    return (logged - second_of(shown, logged)).total_seconds()


def within_slack(shown: str, earliest: datetime, latest: datetime) -> bool:
    """Some instant of the shown second is within SLACK_S of the log's [earliest, latest] (one instant for a
    line of the text log or an alert record; between two ticks for what a tick first shows)."""
    return log_offset_s(shown, latest) >= -SLACK_S and log_offset_s(shown, earliest) < 1 + SLACK_S


def evidence(
    rows: list[Row],
    incidents: list[Incident],
    caplog: pytest.LogCaptureFixture,
    records: list[dict[str, object]],
    until: datetime,
) -> list[tuple[str, Row, datetime, datetime]]:
    """(what the log says, the screen's row, when the log says it) for every row seen, and for every alert
    raised or cleared before `until` (when the screen was last asked)."""

    def row_of(incident: Incident) -> Row:
        shown = f"{incident.at:%H:%M:%S}"
        found = [row for row in rows if row.shown == shown and incident.text.startswith(row.text)]
        assert found, f"no line on the screen for {incident.at:%H:%M:%S.%f} {incident.text!r}: {rows}"
        return found[0]

    def incident_of(row: Row) -> Incident:
        found = [i for i in incidents if f"{i.at:%H:%M:%S}" == row.shown and i.text.startswith(row.text)]
        assert found, f"the screen showed {row} that the agent never noted: {[i.text for i in incidents]}"
        return found[0]

    def first(kind: str) -> Incident:
        return next(i for i in reversed(incidents) if i.kind == kind)

    found: list[tuple[str, Row, datetime, datetime]] = []
    for row in rows:  # every line seen: the text log's "incident ..." line, written as it was noted
        incident = incident_of(row)
        noted = logged_at(caplog, "agent.incidents", re.escape(f"incident {incident.kind}: {incident.text}"))
        found.append((f"noted {incident.kind}", row, noted, noted))
    publishing, dropping, ended, lost = (
        first(kind) for kind in ("stream_started", "relay_dropping", "relay_drops_ended", "encoder_lost")
    )
    relay_log = "agent.relay.relay"
    started = logged_at(caplog, relay_log, r"relay: .* is publishing")
    gone = logged_at(caplog, relay_log, "relay: the encoder was lost")
    found += [
        ("relay: ... is publishing", row_of(publishing), started, started),
        ("relay: the encoder was lost", row_of(lost), gone, gone),
        ("ticks: dropping", row_of(dropping), *first_tick(records, _dropping, publishing.at)),
        ("ticks: not dropping", row_of(ended), *first_tick(records, _not_dropping, dropping.at)),
        ("ticks: holding", row_of(lost), *first_tick(records, lambda relay: bool(relay["holding"]), ended.at)),
    ]
    for record in records:  # every alert raised or cleared: its record against its line
        change: dict[str, object] = record.get("change")  # type: ignore[assignment]
        if record.get("type") != "alert" or change["change"] not in ("raised", "cleared"):
            continue
        alert: dict[str, str] = change["alert"]  # type: ignore[assignment]
        said = f"{alert['severity'].upper()} alert: " if change["change"] == "raised" else "alert cleared: "
        at = datetime.fromisoformat(str(record["at"]))
        if at >= until:
            continue
        lines = [
            i
            for i in incidents
            if i.text == said + alert_headline(alert["message"]) and abs(i.at - at) < timedelta(seconds=5)
        ]
        assert lines, f"the alert {record} is not in the incidents"
        found.append((f"alert {change['change']} {alert['id']}", row_of(lines[0]), at, at))
    return found


def fullest(rows: list[Row]) -> list[Row]:
    """Each line once, with the most of its words any screen showed (a toast may have covered the rest)."""
    kept: list[Row] = []
    for row in rows:
        if any(k.shown == row.shown and k.text.startswith(row.text) for k in kept):
            continue
        kept = [k for k in kept if not (k.shown == row.shown and row.text.startswith(k.text))] + [row]
    return kept


def _dropping(relay: dict[str, object]) -> bool:
    return bool(relay.get("frames_dropped_per_s"))


def _not_dropping(relay: dict[str, object]) -> bool:
    return relay.get("frames_dropped_per_s") == 0


# --- the run ---------------------------------------------------------------------------------------


async def test_the_incident_strip_tells_a_cut_and_an_obs_kill_in_order_with_the_log_s_times(
    netns_host: NetnsHost,
    ingest: NginxRtmp,
    start_obs: Callable[..., ObsStudio],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    available, reason = tmux_available()
    if not available:
        pytest.skip(reason)
    caplog.set_level(logging.INFO, logger="agent")
    relay_port = free_port()
    obs = start_obs(f"rtmp://127.0.0.1:{relay_port}/live", "relay-key", video_kbps=2500, keyint_s=2)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[api]
port = 0
[logs]
dir = "{tmp_path / "logs"}"
[sources.network]
enabled = false
[sources.ffmpeg]
enabled = false
[sources.obs]
url = "{obs.websocket_url}"
password = "{obs.password}"
[sources.uplink]
find_encoder_processes = false
[ingest]
primary = "rtmp://{netns_host.address}:{ingest.port}/live/{KEY}"
[relay]
listen = "127.0.0.1:{relay_port}"
hold_s = 90
"""
    )
    server = AgentServer(load_settings(config, environ={}))
    await server.start()
    client = None
    agent = server.agent

    def kinds() -> list[str]:
        return [incident.kind for incident in agent.incidents.all()]

    def relay_alerts() -> list[str]:
        return [a.id for a in agent.active_alerts() if a.id.startswith(("relay_", "uplink"))]

    try:
        tui = [sys.executable, "-m", "tui.cli", "tui", "--agent", server.url]
        with tmux_pane(tui, *SIZE, cwd=REPO) as pane:
            assert pane.size() == SIZE, "the TUI must be read at the size a technician's window has"
            live = await wait_for_screen(pane, lambda screen: "Last 10 min (UTC)" in screen, 60, "the Live screen")
            assert drawn_size(live) == SIZE, "the TUI drew at another size than its terminal's:\n" + live
            watch = StripWatch(pane)
            watching = asyncio.create_task(watch.run())
            try:
                client = await connect(obs)
                await client.request("StartStream")
                await async_wait_until(lambda: "stream_started" in kinds(), 60, "OBS publishing through the relay")
                await asyncio.sleep(8)  # a healthy stretch: the relay neither drops nor holds
                texts = [incident.text for incident in agent.incidents.all()]
                assert not {"relay_dropping", "encoder_lost", "link_slowed"} & set(kinds()), texts
                screens = {"streaming": pane.capture()}

                netns_host.shape_upload(800)  # the link carries a third of the stream
                await async_wait_until(lambda: "relay_dropping" in kinds(), 40, "the relay to drop frames")
                await asyncio.sleep(5)
                screens["cut"] = pane.capture()
                netns_host.unshape()
                await async_wait_until(lambda: "relay_drops_ended" in kinds(), 40, "the relay's drops to end")
                await async_wait_until(lambda: not relay_alerts(), 40, "the relay's alerts to clear")
                screens["back"] = pane.capture()

                killed_at = datetime.now(UTC)
                obs.process.send_signal(signal.SIGKILL)  # OBS dies mid-stream: the relay holds with the slate
                await async_wait_until(lambda: "encoder_lost" in kinds(), 20, "the relay to hold the broadcast")
                # The hold's critical alert shows a toast for 10 s over the strip, as it should: read after it.
                await asyncio.sleep(2.5)
                screen = await wait_for_screen(pane, lambda s: "▌" not in s, 60, "the alerts' toasts to go")
                screens["held"] = screen
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            for stage, seen in screens.items():
                print(f"--- {stage} ---\n{seen}")
            assert pane.size() == SIZE and drawn_size(screen) == SIZE, screen

            # The screen as a technician reads it: holding, a countdown, on the slate; nothing calm, nothing cut.
            assert re.search(r"ON SLATE \d+s LEFT", screen) and re.search(r"HOLDING \d+s", screen), screen
            assert re.search(r"ends in\s+\d+ s", screen) and "IDLE" not in screen, screen
            assert "…" not in screen, screen

            # The strip, newest first at every glance. The hold was on it, no earlier than the kill; above
            # the hold only what came after it (its own alert, OBS's "not connected", alerts clearing), below
            # it what of the cut the strip has room for, in order. (Long alert lines take 2 to 4 rows: 20 s
            # into the hold, three newer ones may have pushed the hold's line off to the History screen.)
            assert watch.glances > 20 and not watch.out_of_order, watch.out_of_order[:1]
            said = "encoder lost: the relay holds the broadcast for up to"
            # Its whole line, or its first words where a toast covered the rest.
            shown = [
                row
                for row in watch.seen
                if (row.text.startswith(said) or said.startswith(row.text)) and len(row.text) >= len("encoder")
            ]
            assert shown and all(second_of(row.shown, killed_at) >= killed_at.replace(microsecond=0) for row in shown)
            rows = strip_rows(screen)
            lost = index_of(rows, said)
            if lost >= 0:
                kill_second = killed_at.replace(microsecond=0)
                assert all(second_of(row.shown, killed_at) >= kill_second for row in rows[:lost]), screen
                positions = (lost, index_of(rows, "relay drops ended"), index_of(rows, "relay dropping"))
                earlier = [index for index in positions if index >= 0]
                assert earlier == sorted(earlier), screen

            asked_at, heading, timeline = await read_history(pane)
            print(f"--- History, paged through ---\n{pane.capture()}")

        # The History screen: the whole run, newest first, every line the agent noted until it was asked.
        incidents = agent.incidents.all()
        assert f"newest first ({len(timeline)})" in heading, (heading, timeline)
        assert [row.shown for row in timeline] == [f"{i.at:%H:%M:%S}" for i in incidents[-len(timeline) :]]
        landmarks = ("encoder lost", "relay drops ended", "relay dropping", "encoder publishing to the relay")
        order = [index_of(timeline, start) for start in landmarks]
        assert -1 not in order and order == sorted(order), timeline

        # Every line seen, on the strip during the run or on the History screen, against the agent's log.
        every_line = fullest(watch.seen + timeline)
        checks = evidence(every_line, incidents, caplog, health_log(tmp_path / "logs"), asked_at)
        print(f"{'the log says':<28} {'shown':>8}  {'log - shown second (s)':<22}  the line")
        for what, row, earliest, latest in checks:
            offsets = f"{log_offset_s(row.shown, latest):+.3f}"
            if earliest != latest:
                offsets = f"{log_offset_s(row.shown, earliest):+.3f} to {offsets}"
            print(f"{what:<28} {row.shown:>8}  {offsets:<22}  {row.text[:64]}")
        late = [
            (what, row, f"{earliest:%H:%M:%S.%f}", f"{latest:%H:%M:%S.%f}")
            for what, row, earliest, latest in checks
            if not within_slack(row.shown, earliest, latest)
        ]
        assert not late, late
    finally:
        if client is not None:
            await client.close()
        await server.stop("test finished")

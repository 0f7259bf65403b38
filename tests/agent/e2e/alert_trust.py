"""The alert-trust scenario shared by the end-to-end tests and bench/alert_trust.py: a real OBS Studio streams
2500 kbit/s (x264, keyframe every 2 s) to nginx-rtmp in a network namespace, straight or through the agent's
relay, and the agent judges it, as a streamer would live it:

  start    OBS starts streaming (its first seconds send less than configured);
  healthy  the moving test pattern on an unshaped link;
  static   the plain-colour scene: OBS sends far less than configured, the link is fine;
  moving   the test pattern again;
  cut      the path shaped to 1.2 Mbit/s with tc tbf;
  return   the shaping removed.

The agent's own alerts are polled every 50 ms; what the streamer would have seen is kept per phase. The health
log the agent wrote is the recorded timeline (tests/fixtures/timelines/), with the phases' start times.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.events import Subscription
from agent.models import Alert
from agent.models.uplink import UplinkSample
from agent.net.sockdiag import TcpDiagRecord
from agent.net.uplink_tracker import UplinkTracker
from agent.obs.client import ObsClient
from agent.runtime import Agent
from tests.peers.netns import NetnsHost

POLL_S = 0.05
LINK_KBIT = 1200
# What blames the uplink: the alerts a static scene must not raise.
UPLINK_KINDS = frozenset(
    {"uplink_falling_behind", "upload_headroom", "output_congestion", "frames_dropped_network", "ingest_latency"}
)
BITRATE_SUGGESTION = re.compile(r"^Lower the video bitrate to (\d+) kbps")


@dataclass(frozen=True)
class Phases:
    healthy_s: float = 25.0  # from the stream's start
    static_s: float = 15.0
    moving_s: float = 8.0
    cut_s: float = 30.0
    return_s: float = 14.0


@dataclass
class Seen:
    """An alert as the streamer saw it: first and last moment active, its worst severity, its last message."""

    alert_id: str
    kind: str
    first_s: float
    last_s: float
    severity: str
    message: str


@dataclass
class TrustFigures:
    phase_starts_s: dict[str, float] = field(default_factory=dict)  # since the stream started
    started_at: float = 0.0  # time.monotonic() when OBS was told to stream
    seen: list[Seen] = field(default_factory=list)
    early_warning_s: float | None = None  # after the cut, the first uplink_falling_behind alert
    early_warning_id: str | None = None
    suggestions_kbps: list[int] = field(default_factory=list)  # every alert's bitrate suggestion, cut to end
    uplink_suggestions_kbps: list[int] = field(default_factory=list)  # every uplink sample's, cut to end
    first_suggestion_s: float | None = None  # after the cut, the first alert showing a bitrate to lower to
    cleared_after_return_s: dict[str, float | None] = field(default_factory=dict)  # per alert active at the return

    def during(self, phase: str, until: str | None = None) -> list[Seen]:
        start = self.phase_starts_s[phase]
        end = self.phase_starts_s[until] if until else float("inf")
        return [s for s in self.seen if s.first_s < end and s.last_s >= start]

    def kind_of(self, alert_id: str) -> str | None:
        return next((s.kind for s in self.seen if s.alert_id == alert_id), None)

    def line(self) -> str:
        def s(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        cleared = {k: s(v) for k, v in self.cleared_after_return_s.items()}
        after_start = [f"{x.alert_id}({x.severity}) {x.first_s:.1f}-{x.last_s:.1f} s" for x in self.seen]
        return (
            f"early warning {s(self.early_warning_s)} ({self.early_warning_id}), "
            f"first suggestion {s(self.first_suggestion_s)}, "
            f"suggestions {sorted(set(self.suggestions_kbps))} kbps "
            f"(uplink samples {sorted(set(self.uplink_suggestions_kbps))}), cleared after the return {cleared}; "
            f"alerts seen: {after_start}"
        )


async def run_scenario(
    agent: Agent,
    client: ObsClient,
    host: NetnsHost,
    phases: Phases = Phases(),
    *,
    on_phase: Callable[[str, float], Awaitable[None]] | None = None,
) -> TrustFigures:
    """Starts OBS's stream and walks the phases; returns what the agent said when, relative to the stream start."""
    figures = TrustFigures()
    open_seen: dict[str, Seen] = {}
    samples = agent.bus.subscribe()  # every uplink sample, as the API's event stream (the TUI) gets it
    with record_uplink_readings(figures):
        await client.request("StartStream")
        started = figures.started_at = time.monotonic()
        try:
            await _walk(agent, client, host, phases, on_phase, figures, open_seen, samples, started)
        finally:
            agent.bus.unsubscribe(samples)
    return figures


async def _walk(
    agent: Agent,
    client: ObsClient,
    host: NetnsHost,
    phases: Phases,
    on_phase: Callable[[str, float], Awaitable[None]] | None,
    figures: TrustFigures,
    open_seen: dict[str, Seen],
    samples: Subscription,
    started: float,
) -> None:
    cutting = False

    async def phase(name: str) -> None:
        figures.phase_starts_s[name] = time.monotonic() - started
        if on_phase is not None:
            await on_phase(name, figures.phase_starts_s[name])

    def watch() -> list[Alert]:
        now = time.monotonic() - started
        while not samples.queue.empty():
            event = samples.queue.get_nowait()
            if cutting and event.type == "sample" and '"source":"uplink"' in event.data:
                kbps = json.loads(event.data)["sample"].get("suggested_video_bitrate_kbps")
                if kbps is not None:
                    figures.uplink_suggestions_kbps.append(kbps)
        alerts = agent.active_alerts()
        for alert in alerts:
            seen = open_seen.get(alert.id)
            if seen is None:
                seen = open_seen[alert.id] = Seen(alert.id, alert.kind, now, now, alert.severity, alert.message)
                figures.seen.append(seen)
            seen.last_s, seen.message = now, alert.message
            if alert.severity == "critical":
                seen.severity = "critical"
        for alert_id in set(open_seen) - {alert.id for alert in alerts}:
            del open_seen[alert_id]  # cleared: a new raise is a new Seen
        return alerts

    async def hold(until_s: float, each: Callable[[list[Alert], float], None] | None = None) -> None:
        while (now := time.monotonic() - started) < until_s:
            alerts = watch()
            if each is not None:
                each(alerts, now)
            await asyncio.sleep(POLL_S)

    await phase("start")
    await hold(phases.healthy_s)
    await phase("static")
    await client.request("SetCurrentProgramScene", {"sceneName": "BRB"})
    await hold(phases.healthy_s + phases.static_s)
    await phase("moving")
    await client.request("SetCurrentProgramScene", {"sceneName": "Main"})
    await hold(phases.healthy_s + phases.static_s + phases.moving_s)
    host.shape_upload(LINK_KBIT)
    cutting = True
    await phase("cut")
    cut_at = figures.phase_starts_s["cut"]

    def suggested(alerts: list[Alert]) -> None:
        for alert in alerts:
            for suggestion in alert.suggestions:
                match = BITRATE_SUGGESTION.match(suggestion.text)
                if match:
                    figures.suggestions_kbps.append(int(match.group(1)))
                    if figures.first_suggestion_s is None:
                        figures.first_suggestion_s = time.monotonic() - started - cut_at

    def during_cut(alerts: list[Alert], now: float) -> None:
        for alert in alerts:
            if figures.early_warning_s is None and alert.kind == "uplink_falling_behind":
                figures.early_warning_s, figures.early_warning_id = now - cut_at, alert.id
        suggested(alerts)

    await hold(cut_at + phases.cut_s, during_cut)
    host.unshape()
    await phase("return")
    returned_at = figures.phase_starts_s["return"]
    pending = {alert.id for alert in agent.active_alerts()}
    figures.cleared_after_return_s = dict.fromkeys(pending)

    def after_return(alerts: list[Alert], now: float) -> None:
        suggested(alerts)  # an alert still active after the return still shows its suggestion
        active = {alert.id for alert in alerts}
        for alert_id in pending:
            if alert_id not in active and figures.cleared_after_return_s[alert_id] is None:
                figures.cleared_after_return_s[alert_id] = now - returned_at
        for alert in alerts:  # raised after the return: it must clear too
            if alert.id not in figures.cleared_after_return_s:
                pending.add(alert.id)
                figures.cleared_after_return_s[alert.id] = None

    await hold(returned_at + phases.return_s, after_return)
    await phase("end")


@contextlib.contextmanager
def record_uplink_readings(figures: TrustFigures) -> Iterator[None]:
    """With RECORD_UPLINK_READINGS=DIR, every reading the uplink tracker is fed (the kernel's tcp_info of the
    connection to the ingest, 4 a second) goes to DIR/uplink-<time>.jsonl, the phases on its last line: the
    tracker's own input, to replay in its unit tests (tests/fixtures/uplink/)."""
    target = os.environ.get("RECORD_UPLINK_READINGS")
    if not target:
        yield
        return
    readings: list[dict[str, Any]] = []
    update = UplinkTracker.update

    def recording(tracker: UplinkTracker, now: float, record: TcpDiagRecord, **identity: object) -> UplinkSample:
        sample = update(tracker, now, record, **identity)
        readings.append(
            {"at": now, "record": dataclasses.asdict(record), "suggested": sample.suggested_video_bitrate_kbps}
        )
        return sample

    UplinkTracker.update = recording  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        UplinkTracker.update = update  # type: ignore[method-assign]
        out = Path(target)
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"uplink-{time.strftime('%H%M%S')}.jsonl").open("w", encoding="utf-8") as handle:
            for reading in readings:
                handle.write(json.dumps(reading) + "\n")
            handle.write(json.dumps({"phases": figures.phase_starts_s, "started_at": figures.started_at}) + "\n")


def agent_config(
    tmp_path: Path,
    websocket_url: str,
    password: str,
    *,
    logs_dir: Path,
    relay: tuple[str, str] | None = None,
) -> Path:
    """The agent's settings: OBS, the uplink, the health log; `relay`: (listen, ingest URL) to relay through."""
    relay_section = ""
    if relay is not None:
        listen, ingest = relay
        relay_section = f'[ingest]\nprimary = "{ingest}"\n[relay]\nlisten = "{listen}"\n'
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[api]
port = 0
[logs]
dir = "{logs_dir}"
[sources.system]
enabled = false
[sources.network]
enabled = false
[sources.ffmpeg]
enabled = false
[sources.obs]
url = "{websocket_url}"
password = "{password}"
[sources.uplink]
discover_interval_s = 0.5
# Other encoders may run on this machine (other tests): only the configured destination counts.
find_encoder_processes = false
{relay_section}"""
    )
    return config

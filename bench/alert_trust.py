"""Alerts a streamer can trust, over 5-minute runs with a real OBS Studio: what the agent said on a healthy
stream, on a static scene, during a cut to 1.2 Mbit/s and after the link's return. Needs root (network
namespace, tc), nginx-rtmp, obs-studio + xvfb.

    uv run python bench/alert_trust.py [--runs 3] [--path direct|relay|both] [--short]

Each run: a fresh namespace + nginx-rtmp, OBS streaming 2500 kbit/s (x264, keyframe every 2 s, 640x360) straight
to it or through the agent's relay; 120 s healthy (the stream's start included), 60 s of the plain-colour scene,
20 s moving again, 60 s cut with tc tbf, 40 s after the return (--short: the suite's 25/15/8/30/14 s). Printed
per run and as the spread: alerts after the first 15 s before the cut (none expected; the machine's own
rendering lag is listed apart), uplink alerts on the static scene, the early warning after the cut, every bitrate
suggestion shown (in the alerts and in the uplink samples) and when the first came, and how long after the return
each alert cleared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from agent.server import AgentServer
from agent.settings import load_settings
from tests.agent.e2e.alert_trust import UPLINK_KINDS, Phases, TrustFigures, agent_config, run_scenario
from tests.peers.netns import namespace_host
from tests.peers.nginx_rtmp import nginx_rtmp
from tests.peers.obs_studio import connect, obs_studio
from tests.peers.wait import free_port

MACHINE_KINDS = {"rendering_lag", "encoding_lag", "cpu_high", "fps_low"}
LONG = Phases(healthy_s=120, static_s=60, moving_s=20, cut_s=60, return_s=40)


async def one_run(path: str, phases: Phases) -> TrustFigures:
    with (
        tempfile.TemporaryDirectory() as tmp,
        namespace_host() as host,
        nginx_rtmp(host=host.address, netns_exec=host.exec_args()) as ingest,
    ):
        direct = f"rtmp://{host.address}:{ingest.port}/live"
        port = free_port()
        obs_url = direct if path == "direct" else f"rtmp://127.0.0.1:{port}/live"
        with obs_studio(obs_url, video_kbps=2500, keyint_s=2) as obs:
            client = await connect(obs)
            relay = None if path == "direct" else (f"127.0.0.1:{port}", f"{direct}/relayed-key")
            config = agent_config(Path(tmp), obs.websocket_url, obs.password, logs_dir=Path(tmp) / "logs", relay=relay)
            server = AgentServer(load_settings(config, environ={}))
            await server.start()
            try:
                return await run_scenario(server.agent, client, host, phases)
            finally:
                await server.stop()
                await client.close()


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f}-{max(values):.2f} (median {statistics.median(values):.2f})"


def report(figures: TrustFigures) -> dict[str, object]:
    start = figures.phase_starts_s
    loud = [
        f"{s.alert_id}({s.severity})"
        for s in figures.seen
        if s.last_s >= 15 and s.first_s < start["cut"] and s.kind not in MACHINE_KINDS
    ]
    machine = sorted({s.alert_id for s in figures.seen if s.kind in MACHINE_KINDS})
    static = [s.alert_id for s in figures.during("static", "moving") if s.kind in UPLINK_KINDS]
    cleared = {k: v for k, v in figures.cleared_after_return_s.items() if figures.kind_of(k) not in MACHINE_KINDS}
    return {"loud": loud, "machine": machine, "static": static, "cleared": cleared}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--path", choices=("direct", "relay", "both"), default="both")
    parser.add_argument("--short", action="store_true", help="the suite's phases (about 90 s a run)")
    args = parser.parse_args()
    phases = Phases() if args.short else LONG
    for path in ("direct", "relay") if args.path == "both" else (args.path,):
        early: list[float] = []
        worst_clear: list[float] = []
        suggestions: list[int] = []
        first_suggestion: list[float] = []
        for run in range(1, args.runs + 1):
            figures = await one_run(path, phases)
            summary = report(figures)
            print(f"{path} run {run}: {figures.line()}")
            print(f"  healthy-stream alerts: {summary['loud'] or 'none'}; static-scene uplink alerts: "
                  f"{summary['static'] or 'none'}; the machine's own: {summary['machine'] or 'none'}")  # fmt: skip
            if figures.early_warning_s is not None:
                early.append(figures.early_warning_s)
            clears = [v for v in summary["cleared"].values() if v is not None]  # type: ignore[attr-defined]
            if clears:
                worst_clear.append(max(clears))
            suggestions.extend(figures.suggestions_kbps + figures.uplink_suggestions_kbps)
            if figures.first_suggestion_s is not None:
                first_suggestion.append(figures.first_suggestion_s)
        shown = f"{min(suggestions)}-{max(suggestions)}" if suggestions else "none"
        print(
            f"{path}, {args.runs} runs: early warning {spread(early)} s after the cut; the last alert cleared "
            f"{spread(worst_clear)} s after the return; every suggestion shown (alerts and uplink samples) "
            f"{shown} kbps, the first {spread(first_suggestion)} s after the cut"
        )


if __name__ == "__main__":
    asyncio.run(main())

"""Bandwidth test accuracy against ground truth: shaped rate vs measured rate, per backend.

Builds a network namespace joined by a veth pair, shapes the upload with `tc tbf rate R`, runs
`streamhealth bandwidth-server` and nginx-rtmp inside it, and runs each backend at each rate.
Needs root, iproute2, nginx with the RTMP module. Target: within ±10% in at most 10 s of measurement.

    uv run python bench/bandwidth_accuracy.py [--rates 2,5,20] [--duration 5] [--backends http,speedtest,rtmp]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.bandwidth import run_bandwidth_test
from agent.settings import load_settings
from tests.peers.bandwidth_server import bandwidth_server
from tests.peers.netns import can_use_netns, namespace_host
from tests.peers.nginx_rtmp import nginx_rtmp, nginx_rtmp_available


class _Quiet:
    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="2,5,20", help="shaped rates in Mbit/s, comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of measurement per test")
    parser.add_argument("--backends", default="http,speedtest,rtmp")
    args = parser.parse_args()
    usable, reason = can_use_netns()
    if not usable:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    backends = args.backends.split(",")
    if "rtmp" in backends and not nginx_rtmp_available()[0]:
        print(f"skipping rtmp: {nginx_rtmp_available()[1]}", file=sys.stderr)
        backends.remove("rtmp")
    settings = load_settings(
        environ={
            "STREAMHEALTH_BANDWIDTH__HTTP_DOWNLOAD": "false",
            "STREAMHEALTH_BANDWIDTH__SPEEDTEST_DOWNLOAD": "false",
        }
    )
    rows = []
    with namespace_host() as host:
        netns = host.exec_args()
        with (
            bandwidth_server(host.address, netns_exec=netns) as server,
            nginx_rtmp(host.address, netns_exec=netns) as ingest,
        ):
            for rate in (float(rate) for rate in args.rates.split(",")):
                for backend in backends:
                    host.unshape()  # a tbf change keeps its queue; start from an empty one
                    host.shape_upload(int(rate * 1000))
                    url = {
                        "http": server.url,
                        "speedtest": server.url + "/",
                        "rtmp": ingest.url(f"bench{backend}{rate:g}"),
                    }[backend]
                    started = time.monotonic()
                    result = asyncio.run(
                        run_bandwidth_test(
                            settings, backend=backend, reporter=_Quiet(), url=url, duration_s=args.duration
                        )
                    )
                    wall_s = time.monotonic() - started
                    measured = (result.upload_bps or 0) / 1e6
                    error_pct = (measured - rate) / rate * 100
                    rows.append((backend, rate, measured, error_pct, result.duration_s, wall_s, result.error))
    print(f"{'backend':<10} {'shaped':>8} {'measured':>9} {'error':>7} {'measured s':>11} {'total s':>8}  note")
    for backend, rate, measured, error_pct, measured_s, wall_s, error in rows:
        flag = "" if abs(error_pct) <= 10 else "  outside ±10%"
        print(
            f"{backend:<10} {rate:>6g} M {measured:>7.2f} M {error_pct:>+6.1f}% {measured_s:>10.1f} "
            f"{wall_s:>8.1f}  {error or ''}{flag}"
        )
    print("(shaped rate counts Ethernet/IP/TCP headers; payload can reach about 95.6% of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

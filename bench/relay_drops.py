"""What viewers get when the uplink is cut, through the relay and (for OBS) with OBS dropping frames itself.

Run: `uv run python bench/relay_drops.py [--runs 3] [--encoders ffmpeg,obs] [--seconds 30]` (root: a network
namespace shaped with tc tbf; ffmpeg, nginx with libnginx-mod-rtmp, obs-studio and xvfb for OBS).

Each run publishes 2500 kbit/s (ffmpeg's libx264 at its defaults: 3 B-frames, B-pyramid; or OBS Studio with
its default x264: veryfast, High, 2 B-frames; a keyframe every 2 s) to nginx-rtmp in a namespace, cuts the
path to a third of the stream's rate, then to half, `--seconds` each, and prints per run: the error lines
`ffmpeg -v error` prints over nginx's recording, the longest video gap in it (and every gap over 1 s), and
the relay's drops by reason. For OBS the same cuts are run on the direct path too, where OBS drops frames
itself (rtmp-stream.c), side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.agent.relay.drop_e2e import Encoder, Path_, run_cuts  # noqa: E402
from tests.peers.netns import can_use_netns, namespace_host  # noqa: E402
from tests.peers.nginx_rtmp import nginx_rtmp  # noqa: E402


def one_run(encoder: Encoder, path: Path_, seconds: float) -> str:
    with namespace_host() as host, tempfile.TemporaryDirectory() as folder:
        record_dir = Path(folder) / "rec"
        record_dir.mkdir()
        with nginx_rtmp(host=host.address, netns_exec=host.exec_args(), record_dir=record_dir) as server:
            run = asyncio.run(run_cuts(host, server, encoder, [(1 / 3, seconds), (1 / 2, seconds)], path=path))
    errors = "" if not run.decode_errors else f"\n      first errors: {run.decode_errors[:3]}"
    return run.line() + errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--encoders", default="ffmpeg,obs")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    usable, reason = can_use_netns()
    if not usable:
        sys.exit(f"bench/relay_drops.py {reason}")
    for encoder in args.encoders.split(","):
        paths: list[Path_] = ["relay", "direct"] if encoder == "obs" else ["relay"]
        for run in range(1, args.runs + 1):
            for path in paths:
                print(f"run {run}: {one_run(encoder, path, args.seconds)}", flush=True)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

"""The relay against nginx-rtmp's `push`, side by side in the same run: CPU, peak RSS, added latency, and RSS
when the uplink is ten times too slow.

Run: `uv run python bench/relay.py [--runs 3] [--seconds 20] [--bitrates 6,50] [--read-batch-ms 0]` (needs ffmpeg, nginx with
libnginx-mod-rtmp; the slow-uplink part needs root for a network namespace shaped with tc tbf).

One pre-encoded stream (ffmpeg testsrc2, x264 CBR, 2 s GOP, AAC) is published in real time, frame by frame,
by three publishers at once: straight to a sink (the baseline), through the streamhealth agent's relay (a
separate `streamhealth agent` process with only the relay running), and through nginx-rtmp relaying with
`push`. The sink notes when each frame arrives; the added latency of a path is its frame-in-to-frame-out
time minus the baseline's for the same frame. CPU is the relaying process's user+system time over the run
(% of one core, from the scheduler's nanosecond counters on Linux), and the relay's CPU over nginx-rtmp's is
given run by run (the target is a ratio: both see the same machine at the same moment); peak RSS is its VmHWM. The machine is shared: the figures are noisy, so each is given as
the median and the spread (min-max) over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.relay.frames import Frame  # noqa: E402
from agent.relay.publisher import PublisherSession, PublishRequested  # noqa: E402
from agent.rtmp import flv  # noqa: E402
from agent.rtmp.client import RtmpPublisher  # noqa: E402
from tests.peers.netns import can_use_netns, namespace_host  # noqa: E402
from tests.peers.nginx_rtmp import nginx_rtmp  # noqa: E402
from tests.peers.wait import free_port, port_open, wait_until  # noqa: E402

PATHS = ("relay", "nginx")


# ------------------------------------------------------------------------------------------ the media


def encoded_stream(bitrate_mbps: int, seconds: int) -> list[flv.FlvTag]:
    size = "1280x720" if bitrate_mbps <= 10 else "1920x1080"
    path = Path(tempfile.gettempdir()) / f"streamhealth-bench-relay-{bitrate_mbps}M-{seconds}s.flv"
    if not path.exists():
        rate = f"{bitrate_mbps}M"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
             "-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate, "-x264-params", "nal-hrd=cbr",
             "-c:a", "aac", "-b:a", "160k", "-f", "flv", str(path)],
            check=True, timeout=600,
        )  # fmt: skip
    return [tag for tag in flv.read_flv(path.read_bytes()) if tag.tag_type in (flv.TAG_AUDIO, flv.TAG_VIDEO)]


# -------------------------------------------------------------------------------------------- the sink


@dataclass
class Sink:
    """An RTMP server (the relay's own server side) noting when each frame of each stream arrives."""

    arrivals: dict[str, dict[tuple[int, int], float]] = field(default_factory=lambda: defaultdict(dict))
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = PublisherSession()
        name = "?"
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(1 << 18):
                session.receive_data(data)
                while events := session.events():
                    for event in events:
                        if isinstance(event, PublishRequested):
                            name = event.stream_name.partition("?")[0]
                            session.accept_publish()
                        elif isinstance(event, Frame):
                            self.arrivals[name].setdefault((event.type_id, event.timestamp_ms), event.received_at_s)
                out = session.data_to_send()
                if out:
                    writer.write(out)
        writer.close()


def _sink_main(connection: Connection) -> None:
    """The sink in its own process, so the publishers' work never delays when a frame is seen to arrive
    (CLOCK_MONOTONIC is the same clock in every process)."""

    async def serve() -> None:
        sink = Sink()
        server = await asyncio.start_server(sink.handle, "127.0.0.1", 0, limit=1 << 20)
        connection.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, connection.recv)  # "stop"
        server.close()
        connection.send({name: dict(frames) for name, frames in sink.arrivals.items()})

    asyncio.run(serve())


@contextlib.contextmanager
def sink_process() -> Iterator[tuple[int, Callable[[], dict[str, dict[tuple[int, int], float]]]]]:
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(target=_sink_main, args=(child,), daemon=True)
    process.start()
    try:
        port = parent.recv()

        def arrivals() -> dict[str, dict[tuple[int, int], float]]:
            parent.send("stop")
            result: dict[str, dict[tuple[int, int], float]] = parent.recv()
            return result

        yield port, arrivals
    finally:
        process.terminate()
        process.join(5)


# ------------------------------------------------------------------------------------- the processes


@contextlib.contextmanager
def agent_relay(
    relay_port: int, ingest_url: str, workdir: Path, api_port: int = 0, read_batch_ms: float | None = None
) -> Iterator[psutil.Process]:
    config = workdir / "agent.toml"
    batch = "" if read_batch_ms is None else f"read_batch_ms = {read_batch_ms}\n"
    config.write_text(
        f'[ingest]\nprimary = "{ingest_url}"\n[relay]\nlisten = "127.0.0.1:{relay_port}"\n{batch}'
        f"[api]\nport = {api_port}\n[logs]\nenabled = false\n"
        "[sources.system]\nenabled = false\n[sources.network]\nenabled = false\n"
        "[sources.obs]\nenabled = false\n[sources.ffmpeg]\nenabled = false\n"
        # The uplink source (sock_diag, a process scan every few seconds) is not the relay's work: off.
        "[sources.uplink]\nenabled = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")}
    env.update(XDG_CONFIG_HOME=str(workdir / "cfg"), XDG_DATA_HOME=str(workdir / "data"))
    command = [sys.executable, "-c", "from agent.cli import main; main()", "-q", "agent", "--config", str(config)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: process.poll() is not None or port_open("127.0.0.1", relay_port), 30, "the agent's relay")
        if process.poll() is not None:
            raise RuntimeError(f"the agent exited: {process.stderr.read().decode() if process.stderr else ''}")
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _relay_internal_latency(api_port: int) -> dict[str, float]:
    """The relay's own frame-in-to-frame-out figures (its last ~4096 frames), from the agent's API."""
    import httpx

    relay = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=5).json().get("relay") or {}
    return {"internal_p50_ms": relay.get("latency_p50_ms") or float("nan"),
            "internal_p99_ms": relay.get("latency_p99_ms") or float("nan")}  # fmt: skip


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of every thread, from the scheduler's nanosecond counters where Linux has them
    (/proc/<pid>/task/*/schedstat): clock ticks (psutil) are 10 ms, a tenth of what nginx-rtmp uses in a run."""
    tasks = Path(f"/proc/{process.pid}/task")
    try:
        return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks.iterdir()) / 1e9
    except OSError:
        return float(sum(process.cpu_times()[:2]))


def peak_rss_bytes(process: psutil.Process) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return int(process.memory_info().rss)


# ---------------------------------------------------------------------------------------- publishing


async def publish_all(
    tags: list[flv.FlvTag], urls: dict[str, str], seconds: float
) -> dict[str, dict[tuple[int, int], float]]:
    """Send every frame to every URL at once, in real time; return when each frame went out, per path."""
    sent: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    publishers = {name: RtmpPublisher(url, chunk_size=4096, timeout_s=20) for name, url in urls.items()}
    for publisher in publishers.values():
        await publisher.start()
    try:
        loop = asyncio.get_running_loop()
        origin = loop.time() + 0.2
        for tag in tags:
            if tag.timestamp / 1000 > seconds:
                break
            delay = origin + tag.timestamp / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for name, publisher in publishers.items():
                if tag.tag_type == flv.TAG_VIDEO:
                    await publisher.send_video(tag.timestamp, tag.data)
                else:
                    await publisher.send_audio(tag.timestamp, tag.data)
                sent[name].setdefault((tag.tag_type, tag.timestamp), time.monotonic())
    finally:
        for publisher in publishers.values():
            await publisher.close()
    return sent


def added_latency_ms(
    sent: dict[str, dict[tuple[int, int], float]], arrivals: dict[str, dict[tuple[int, int], float]], path: str
) -> list[float]:
    """Per frame: (arrival through `path` - sent on `path`) - (arrival direct - sent direct), in ms."""
    received = {
        "relay": arrivals.get("relay", {}),
        "nginx": arrivals.get("nginx", {}),
        "direct": arrivals.get("direct", {}),
    }
    added = []
    for key, sent_at in sent[path].items():
        if key[1] == 0 or key not in received[path] or key not in received["direct"]:
            continue
        through = received[path][key] - sent_at
        direct = received["direct"][key] - sent["direct"][key]
        added.append((through - direct) * 1000)
    return added


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def one_run(seconds: int, tags: list[flv.FlvTag], read_batch_ms: float | None) -> dict[str, dict[str, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="streamhealth-bench-relay-"))
    relay_port = free_port()
    figures: dict[str, dict[str, float]] = {}
    try:
        with sink_process() as (sink_port, arrivals):
            push = f"push rtmp://127.0.0.1:{sink_port}/live;"
            api_port = free_port()
            with (
                agent_relay(
                    relay_port, f"rtmp://127.0.0.1:{sink_port}/live/relay", workdir, api_port, read_batch_ms
                ) as agent,
                nginx_rtmp(extra_application_config=push) as nginx,
            ):
                processes = {"relay": agent, "nginx": psutil.Process(nginx.process.pid)}
                urls = {
                    "direct": f"rtmp://127.0.0.1:{sink_port}/live/direct",
                    "relay": f"rtmp://127.0.0.1:{relay_port}/live/anything",
                    "nginx": nginx.url("nginx"),
                }
                cpu_before = {name: cpu_seconds(p) for name, p in processes.items()}
                started = time.monotonic()
                sent = await publish_all(tags, urls, seconds)
                wall = time.monotonic() - started
                cpu = {name: (cpu_seconds(p) - cpu_before[name]) / wall * 100 for name, p in processes.items()}
                peaks = {name: peak_rss_bytes(p) for name, p in processes.items()}
                await asyncio.sleep(1.5)  # a tick or two, so the relay sample holds the whole run
                internal = _relay_internal_latency(api_port)
            arrived = arrivals()
        for name in PATHS:
            latency = added_latency_ms(sent, arrived, name)
            figures[name] = {
                "cpu_pct": cpu[name],
                "peak_rss_mb": peaks[name] / 1e6,
                "p50_ms": percentile(latency, 0.5),
                "p99_ms": percentile(latency, 0.99),
                "frames": len(latency),
            }
        figures["relay"].update(internal)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


# --------------------------------------------------------------------------------- the slow uplink


async def slow_uplink_rss(bitrate_mbps: int, seconds: int, tags: list[flv.FlvTag]) -> list[tuple[float, float]] | None:
    """The relay forwarding to an nginx in a namespace whose path carries a tenth of the bitrate: RSS over time."""
    usable, reason = can_use_netns()
    if not usable:
        print(f"  (slow uplink skipped: {reason})")
        return None
    workdir = Path(tempfile.mkdtemp(prefix="streamhealth-bench-slow-"))
    relay_port = free_port()
    samples: list[tuple[float, float]] = []
    try:
        with namespace_host() as host, nginx_rtmp(host=host.address, netns_exec=host.exec_args()) as ingest:
            host.shape_upload(bitrate_mbps * 1000 // 10)
            with agent_relay(relay_port, ingest.url("slow"), workdir) as agent:
                started = time.monotonic()

                async def watch() -> None:
                    while True:
                        samples.append((time.monotonic() - started, agent.memory_info().rss / 1e6))
                        await asyncio.sleep(1.0)

                watcher = asyncio.create_task(watch())
                try:
                    await publish_all(tags, {"relay": f"rtmp://127.0.0.1:{relay_port}/live/x"}, seconds)
                finally:
                    watcher.cancel()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


# ---------------------------------------------------------------------------------------------- main


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} {unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--bitrates", default="6,50", help="Mbit/s, comma-separated")
    parser.add_argument("--no-slow", action="store_true", help="skip the 10x too slow uplink")
    parser.add_argument(
        "--read-batch-ms", type=float, default=None, help="the relay's relay.read_batch_ms (default: its own, 15)"
    )
    args = parser.parse_args()
    print(f"relay vs nginx-rtmp push, {args.runs} runs of {args.seconds} s; median (min-max); CPU in % of one core")
    for bitrate in (int(b) for b in args.bitrates.split(",")):
        tags = encoded_stream(bitrate, args.seconds)
        runs = [await one_run(args.seconds, tags, args.read_batch_ms) for _ in range(args.runs)]
        print(f"\n{bitrate} Mbit/s")
        print(f"  {'':8} {'CPU':>22} {'peak RSS':>22} {'added p50':>24} {'added p99':>24}")
        for path in PATHS:
            rows = [run[path] for run in runs]
            print(
                f"  {path:8} {spread([r['cpu_pct'] for r in rows], '%', 2):>22} "
                f"{spread([r['peak_rss_mb'] for r in rows], 'MB'):>22} "
                f"{spread([r['p50_ms'] for r in rows], 'ms', 2):>24} {spread([r['p99_ms'] for r in rows], 'ms', 2):>24}"
                f"   frames {int(min(r['frames'] for r in rows))}"
            )
        ratios = [run["relay"]["cpu_pct"] / run["nginx"]["cpu_pct"] for run in runs]
        print(f"  relay CPU / nginx-rtmp CPU, run by run: {spread(ratios, 'x', 2)}")
        internal = [run["relay"] for run in runs]
        print(
            f"  relay inside (frame read to frame written, its own clock): p50 "
            f"{spread([r['internal_p50_ms'] for r in internal], 'ms', 3)}, p99 "
            f"{spread([r['internal_p99_ms'] for r in internal], 'ms', 3)}"
        )
        if not args.no_slow:
            samples = await slow_uplink_rss(bitrate, args.seconds, tags)
            if samples:
                rss = [value for _, value in samples]
                print(
                    f"  relay RSS with the uplink at {bitrate / 10:g} Mbit/s: start {rss[0]:.1f} MB, "
                    f"peak {max(rss):.1f} MB, end {rss[-1]:.1f} MB over {samples[-1][0]:.0f} s"
                )


if __name__ == "__main__":
    asyncio.run(main())

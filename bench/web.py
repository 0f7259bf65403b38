"""Benchmark: what each browser watching `streamhealth web` costs on the machine that serves it.

A real agent (`streamhealth agent`, loopback) and `streamhealth web` run as processes; 1, 2 then 3 headless
chromium browsers open the page one after the other and each gets its own TUI process. Over `--window-s`
seconds with every browser showing the Live screen, the script reads with psutil each TUI process's RSS
and USS and its CPU time, and the web server's. Side by side: the same TUI in a plain terminal (tmux,
`streamhealth tui --agent URL`), what a technician would otherwise run over ssh.

    uv run python bench/web.py                  # about 2 minutes
    uv run python bench/web.py --browsers 5 --window-s 60
Chromium's own memory is the viewer's (on the phone or laptop), not printed here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.tui.browser import Chromium  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tuis_of(parent: psutil.Process) -> list[psutil.Process]:
    return [child for child in parent.children(recursive=True) if "tui.cli" in " ".join(child.cmdline())]


def measure(processes: list[psutil.Process], window_s: float) -> list[tuple[float, float, float]]:
    """(CPU % of one core over the window, RSS MB, USS MB) for each process."""
    before = [p.cpu_times() for p in processes]
    started = time.monotonic()
    time.sleep(window_s)
    elapsed = time.monotonic() - started
    figures = []
    for process, first in zip(processes, before, strict=True):
        now = process.cpu_times()
        cpu = (now.user + now.system - first.user - first.system) / elapsed * 100
        memory = process.memory_full_info()
        figures.append((cpu, memory.rss / 1e6, memory.uss / 1e6))
    return figures


def line(label: str, figures: list[tuple[float, float, float]]) -> str:
    cpu = [f[0] for f in figures]
    rss = [f[1] for f in figures]
    uss = [f[2] for f in figures]
    return (
        f"{label:<34} CPU {min(cpu):5.1f}-{max(cpu):5.1f}% of a core   RSS {min(rss):5.1f}-{max(rss):5.1f} MB   "
        f"USS {min(uss):5.1f}-{max(uss):5.1f} MB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browsers", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="streamhealth-bench-web-"))
    agent_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHEALTH_")}
    env.update({"STREAMHEALTH_API__PORT": str(agent_port), "STREAMHEALTH_LOGS__DIR": str(work / "logs")})
    python = sys.executable
    agent = subprocess.Popen([python, "-m", "tui.cli", "agent"], env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    web = subprocess.Popen([python, "-m", "tui.cli", "web", "--port", str(web_port)], env=env, cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    browsers: list[Chromium] = []
    tmux = f"streamhealth-bench-{os.getpid()}"
    try:
        time.sleep(4)
        server = psutil.Process(web.pid)
        print(f"agent at 127.0.0.1:{agent_port}, streamhealth web at 127.0.0.1:{web_port}; {args.window_s:g} s windows")
        print(line("web server, no browser", measure([server], args.window_s)))
        for count in range(1, args.browsers + 1):
            browser = Chromium(width=1300, height=900)
            browsers.append(browser)
            await browser.open(f"http://127.0.0.1:{web_port}/")
            await browser.wait_for_text("Output bitrate", timeout_s=60)
            await asyncio.sleep(3)  # past the first full draw
            tuis = tuis_of(server)
            figures = await asyncio.to_thread(measure, [*tuis, server], args.window_s)
            print(line(f"{count} browser(s): each TUI ({len(tuis)})", figures[:-1]))
            print(line(f"{count} browser(s): web server", figures[-1:]))
        # Side by side: the TUI in a terminal (tmux, 160x48 like a 1300x900 page at 16 px).
        subprocess.run(["tmux", "new-session", "-d", "-s", tmux, "-x", "160", "-y", "48",
                        f"cd {REPO} && {python} -m tui.cli tui --agent http://127.0.0.1:{agent_port}"],
                       env=env, check=True)  # fmt: skip
        time.sleep(6)
        pane_pid = int(subprocess.run(["tmux", "display", "-p", "-t", tmux, "#{pane_pid}"],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
        pane = psutil.Process(pane_pid)
        terminal_tui = [p for p in [pane, *pane.children(recursive=True)] if "tui.cli" in " ".join(p.cmdline())]
        print(line("the same TUI in tmux (no browser)", await asyncio.to_thread(measure, terminal_tui, args.window_s)))
    finally:
        for browser in browsers:
            await browser.close()
        subprocess.run(["tmux", "kill-session", "-t", tmux], stderr=subprocess.DEVNULL)
        for process in (web, agent):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

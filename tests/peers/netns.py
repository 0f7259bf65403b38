"""A test host in its own network namespace, joined to this one by a veth pair, its path shaped by tbf.

Upload (this host -> the namespace) is shaped on the host end's egress; download on the namespace end's.
Only addresses inside these namespaces are used (10.231.N.0/30), never anything outside the machine.
To cut the link, take the namespace's end down (taking the host's end down deletes the route and would
send the traffic out of the default route).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

_counter = itertools.count(1)


def can_use_netns() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root (ip netns, veth, tc); CI runs as root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return False, f"needs the '{tool}' command (apt install iproute2)"
    return True, ""


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")


def _tbf_args(device: str, rate_kbit: int, burst_bytes: int | None, latency_ms: int) -> list[str]:
    burst = burst_bytes or max(4096, rate_kbit * 1000 // 8 // 50)  # about 20 ms of traffic
    # "add" on a cleared root: "replace" on a live tbf keeps its queue, and packets queued under a
    # bigger burst then never fit the new one, jamming the link.
    return [
        "qdisc",
        "add",
        "dev",
        device,
        "root",
        "tbf",
        "rate",
        f"{rate_kbit}kbit",
        "burst",
        str(burst),
        "latency",
        f"{latency_ms}ms",
    ]


@dataclass
class NetnsHost:
    name: str
    host_veth: str
    ns_veth: str
    host_address: str
    address: str  # the namespace's address, reachable from this host

    def exec_args(self, *command: str) -> list[str]:
        """Arguments that run `command` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def shape_upload(self, rate_kbit: int, burst_bytes: int | None = None, latency_ms: int = 200) -> None:
        """Limit this host -> namespace to `rate_kbit` (token bucket; replaces any previous shaping)."""
        subprocess.run(["tc", "qdisc", "del", "dev", self.host_veth, "root"], capture_output=True)
        _run("tc", *_tbf_args(self.host_veth, rate_kbit, burst_bytes, latency_ms))

    def shape_download(self, rate_kbit: int, burst_bytes: int | None = None, latency_ms: int = 200) -> None:
        """Limit namespace -> this host to `rate_kbit`."""
        subprocess.run(self.exec_args("tc", "qdisc", "del", "dev", self.ns_veth, "root"), capture_output=True)
        _run(*self.exec_args("tc", *_tbf_args(self.ns_veth, rate_kbit, burst_bytes, latency_ms)))

    def unshape(self) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", self.host_veth, "root"], capture_output=True)
        subprocess.run(self.exec_args("tc", "qdisc", "del", "dev", self.ns_veth, "root"), capture_output=True)

    def cut(self) -> None:
        _run(*self.exec_args("ip", "link", "set", self.ns_veth, "down"))

    def restore(self) -> None:
        _run(*self.exec_args("ip", "link", "set", self.ns_veth, "up"))


@contextlib.contextmanager
def namespace_host() -> Iterator[NetnsHost]:
    index = (os.getpid() * 7 + next(_counter)) % 250 + 1
    name = f"sh{os.getpid() % 100000}x{index}"
    host_veth, ns_veth = f"shh{index}p{os.getpid() % 1000}", f"shn{index}p{os.getpid() % 1000}"
    subnet = f"10.231.{index}"
    host = NetnsHost(name, host_veth, ns_veth, f"{subnet}.1", f"{subnet}.2")
    try:
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", host_veth, "type", "veth", "peer", "name", ns_veth)
        _run("ip", "link", "set", ns_veth, "netns", name)
        _run("ip", "addr", "add", f"{host.host_address}/30", "dev", host_veth)
        _run("ip", "link", "set", host_veth, "up")
        _run(*host.exec_args("ip", "addr", "add", f"{host.address}/30", "dev", ns_veth))
        _run(*host.exec_args("ip", "link", "set", ns_veth, "up"))
        _run(*host.exec_args("ip", "link", "set", "lo", "up"))
        yield host
    finally:
        subprocess.run(["ip", "link", "del", host_veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.contextmanager
def loopback_only_namespace() -> Iterator[str]:
    """A network namespace with nothing but loopback (yields its name): what runs in it can reach no
    address outside it, so a fuzzer may make the agent dial any URL it likes."""
    name = f"shlo{os.getpid() % 100000}x{next(_counter)}"
    try:
        _run("ip", "netns", "add", name)
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)

"""The cost of one read of the encoder's ingest connection through sock_diag, beside `ss -ti`.

    uv run python bench/sockdiag.py [--sockets 1000] [--reads 2000]

Opens N loopback TCP connections to one listener plus one "ingest" connection to another, then times
(a) our filtered read of the ingest connection (what the uplink source does at 4 Hz), (b) our unfiltered
dump of every socket, (c) `ss -tin` filtered the same way (a new process each time, as a user would run it),
first with 1 other socket, then with N. Linux only. CPU figures are noisy on a shared machine: the median
and the 10th-90th percentiles over the reads are printed.
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import subprocess
import time

from agent.net.sockdiag_reader import SockDiagReader
from agent.net.uplink_tracker import UplinkTracker


def spread(samples_s: list[float]) -> str:
    ordered = sorted(samples_s)
    p10, p90 = ordered[len(ordered) // 10], ordered[len(ordered) * 9 // 10]
    return f"median {statistics.median(ordered) * 1e3:8.3f} ms  (p10 {p10 * 1e3:.3f}, p90 {p90 * 1e3:.3f})"


def time_calls(call: object, count: int) -> list[float]:
    assert callable(call)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def connections(count: int) -> tuple[socket.socket, list[socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    opened: list[socket.socket] = []
    for _ in range(count):
        opened.append(socket.create_connection(listener.getsockname()))
        opened.append(listener.accept()[0])
    return listener, opened


def measure(label: str, ingest_port: int, reads: int) -> None:
    reader = SockDiagReader()
    filtered = time_calls(lambda: reader.read("127.0.0.1", ingest_port), reads)
    found = len(reader.read("127.0.0.1", ingest_port))
    everything = time_calls(reader.read, max(20, reads // 10))
    total = len(reader.read())
    ss_args = ["ss", "-tin", "dst", f"127.0.0.1:{ingest_port}"]
    ss_times = time_calls(lambda: subprocess.run(ss_args, capture_output=True, check=True), 30)
    ss_all = time_calls(lambda: subprocess.run(["ss", "-tin"], capture_output=True, check=True), 30)
    tracker = UplinkTracker()

    def full_reading() -> None:
        (current,) = reader.read("127.0.0.1", ingest_port)
        tracker.update(time.monotonic(), current, connection=f"127.0.0.1:{ingest_port}")

    full = time_calls(full_reading, reads)
    reader.close()
    print(f"--- {label}: {total} established TCP sockets on the machine")
    print(f"sock_diag, filtered in the kernel ({found} match): {spread(filtered)}")
    print(
        f"one uplink reading (read + tracker + sample):  {spread(full)}  -> x4/s = {statistics.median(full) * 4 * 100:.3f} % of a core"
    )
    print(f"sock_diag, every socket:                          {spread(everything)}")
    print(f"ss -tin dst ADDR:PORT (new process):               {spread(ss_times)}")
    print(f"ss -tin (every socket, new process):               {spread(ss_all)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * args.sockets + 100)), hard))
    ingest_listener, ingest = connections(1)
    ingest[0].sendall(b"\0" * 100_000)
    ingest_port = ingest_listener.getsockname()[1]
    start_cpu = time.process_time()
    measure("1 connection", ingest_port, args.reads)
    others_listener, others = connections(args.sockets)
    measure(f"{args.sockets} more connections (x2 ends)", ingest_port, args.reads)
    print(f"(this process's CPU for all of it: {time.process_time() - start_cpu:.2f} s; the machine is shared)")
    for sock in (*ingest, *others, ingest_listener, others_listener):
        sock.close()


if __name__ == "__main__":
    main()

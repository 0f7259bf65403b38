"""FFmpeg's own RTMP server (PyAV's FFmpeg 8 in listen mode) as an ingest that understands enhanced RTMP,
recording what it receives to an FLV file with its packets copied, not re-encoded.

Why not nginx-rtmp for HEVC: libnginx-mod-rtmp (Debian's, nginx 1.22) reads an E-RTMP video header's
upper nibble as the frame type (9 for a keyframe), so its recorder, which waits for a keyframe, writes no
video at all from an `hvc1` stream (measured: 4 s of OBS-style HEVC gave a file with audio only). FFmpeg
is what many platforms' ingests run behind their front ends, and it reads E-RTMP and legacy FLV alike.

It takes one publisher, as FFmpeg's listen mode does: a second connection (a relay that reconnected) finds
no server, and the recording ends when the first publisher unpublishes or goes away. Run as its own process
(`python -m tests.peers.pyav_ingest PORT OUT`); tests start it with `pyav_ingest()`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers.wait import free_port, wait_until


def record(port: int, out: str) -> None:
    import av

    url = f"rtmp://127.0.0.1:{port}/live/held"
    source = av.open(url, format="flv", options={"listen": "1", "timeout": "60"})
    with source, av.open(out, "w", format="flv") as sink:
        streams = {stream.index: sink.add_stream_from_template(stream) for stream in source.streams
                   if stream.type in ("video", "audio")}  # fmt: skip
        try:
            for packet in source.demux():
                if packet.dts is None or packet.stream.index not in streams:
                    continue
                packet.stream = streams[packet.stream.index]
                sink.mux(packet)
        except av.error.OSError as exc:  # the publisher closed the connection after deleteStream
            print(f"the publisher went away: {exc}", file=sys.stderr)


def listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:port, read from /proc/net/tcp: connecting to see would be taken
    by FFmpeg's listen mode as its one publisher."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in list(table)[1:])


@dataclass
class PyavIngest:
    port: int
    recording: Path
    process: subprocess.Popen[bytes]

    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/held"

    def wait(self, timeout_s: float) -> str:
        """Wait for the recording to end (the publisher gone); returns what the ingest printed on stderr."""
        _, err = self.process.communicate(timeout=timeout_s)
        return err.decode(errors="replace")


@contextlib.contextmanager
def pyav_ingest(folder: Path) -> Iterator[PyavIngest]:
    port = free_port()
    recording = folder / "held.flv"
    command = [sys.executable, "-m", "tests.peers.pyav_ingest", str(port), str(recording)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: process.poll() is not None or listening(port), 20, "the PyAV ingest to listen")
        if process.poll() is not None:
            raise RuntimeError(f"the PyAV ingest exited: {process.stderr.read().decode() if process.stderr else ''}")
        yield PyavIngest(port, recording, process)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


if __name__ == "__main__":
    record(int(sys.argv[1]), sys.argv[2])

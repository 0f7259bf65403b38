"""A real Prometheus (Debian's `prometheus`) with its own config and storage in a temporary folder.

Started in the foreground on a free loopback port, waited for, and always stopped, failed test or not.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers.process import listening_process
from tests.peers.wait import free_port


def prometheus_available() -> tuple[bool, str]:
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            return False, f"needs '{tool}' (apt install prometheus)"
    return True, ""


@dataclass
class Prometheus:
    url: str
    workdir: Path


@contextlib.contextmanager
def prometheus(config_yaml: str, files: dict[str, str] | None = None) -> Iterator[Prometheus]:
    """Run Prometheus with `config_yaml`; `files` (name -> text) are written beside it (rules, tokens)."""
    workdir = Path(tempfile.mkdtemp(prefix="sh-prometheus-"))
    try:
        (workdir / "prometheus.yml").write_text(config_yaml)
        for name, text in (files or {}).items():
            (workdir / name).write_text(text)
        port = free_port()
        command = [
            "prometheus",
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        with listening_process(command, "127.0.0.1", port, what="prometheus", timeout_s=30):
            yield Prometheus(f"http://127.0.0.1:{port}", workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

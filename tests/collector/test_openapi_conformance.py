"""The collector is exactly what its OpenAPI document says: Schemathesis (`--checks all`) against a real
`streamhealth collector serve` on loopback, with a read token (ingest then answers its declared 403)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.process import listening_process
from tests.peers.wait import free_port

pytestmark = [pytest.mark.integration]

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed in this environment (uv sync installs the dev group)")
    return path


def test_schemathesis_finds_no_difference_between_the_document_and_the_collector(tmp_path: Path) -> None:
    streamhealth, schemathesis = _tool("streamhealth"), _tool("schemathesis")
    database = ["--database", f"sqlite:///{tmp_path / 'collector.sqlite3'}"]
    made = subprocess.run(
        [streamhealth, "collector", "token", "--reader", "dashboard", *database],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[0]
    port = free_port()
    serve = [streamhealth, "collector", "serve", "--host", "127.0.0.1", "--port", str(port), *database]
    with listening_process(serve, "127.0.0.1", port, what="the collector", timeout_s=30):
        run = subprocess.run(
            [
                schemathesis,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--request-timeout",
                "10",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    report = run.stdout[-12000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, report
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= 15, report
    assert "Failures:" not in run.stdout, report

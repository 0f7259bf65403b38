"""The API is exactly what its OpenAPI document says: Schemathesis (`--checks all`) against a real agent.

The agent and Schemathesis run in a network namespace with nothing but loopback: the fuzzer may ask the
agent to run a bandwidth test against any URL the document allows, and nothing may leave the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.netns import can_use_netns, loopback_only_namespace
from tests.peers.process import listening_process

pytestmark = [pytest.mark.integration, pytest.mark.root]

PORT = 8765  # the namespace is new: nothing else listens there
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))  # per operation and phase: ~20 s on 2 cores


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed in this environment (uv sync installs the dev group)")
    return path


@pytest.mark.parametrize("token", [None, "conformance-token-1234"], ids=["open", "with-token"])
def test_schemathesis_finds_no_difference_between_the_document_and_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    usable, reason = can_use_netns()
    if not usable:
        pytest.skip(reason)
    streamhealth, schemathesis = _tool("streamhealth"), _tool("schemathesis")
    monkeypatch.setenv("STREAMHEALTH_API__PORT", str(PORT))
    monkeypatch.setenv("STREAMHEALTH_LOGS__DIR", str(tmp_path / "logs"))
    auth = []
    if token is not None:  # every endpoint then wants it, /openapi.json included, and says 401 without it
        monkeypatch.setenv("STREAMHEALTH_API__TOKEN", token)
        auth = ["--header", f"Authorization: Bearer {token}"]
    with loopback_only_namespace() as namespace:
        netns_exec = ["ip", "netns", "exec", namespace]
        with listening_process(
            [streamhealth, "agent"], "127.0.0.1", PORT, what="the agent", netns_exec=netns_exec, timeout_s=30
        ):
            run = subprocess.run(
                [
                    *netns_exec,
                    schemathesis,
                    "run",
                    f"http://127.0.0.1:{PORT}/openapi.json",
                    "--checks",
                    "all",
                    "--max-examples",
                    str(MAX_EXAMPLES),
                    "--request-timeout",
                    "10",
                    *auth,
                ],
                cwd=tmp_path,  # its example database stays out of the checkout
                capture_output=True,
                text=True,
                timeout=300,
            )
    report = run.stdout[-12000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, report
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= 14, report  # every operation
    assert "Failures:" not in run.stdout, report

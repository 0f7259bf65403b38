"""Shared fixtures: real peers (nginx-rtmp, network namespaces), the recorded fixtures, clean settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.redact import forget_registered_secrets
from tests.peers.netns import NetnsHost, can_use_netns, namespace_host
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_fixtures_dir() -> Path:
    """`../shared/fixtures` beside the checkout (CI lays a copy there too); override with an env var."""
    override = os.environ.get("STREAMHEALTH_FIXTURES")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    path = _shared_fixtures_dir()
    if not path.is_dir():
        pytest.fail(f"recorded fixtures not found at {path}; set STREAMHEALTH_FIXTURES to the shared/fixtures folder")
    return path


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's own config or env, or writes into their data folder."""
    for name in list(os.environ):
        if name.startswith("STREAMHEALTH_") and name != "STREAMHEALTH_FIXTURES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    yield
    forget_registered_secrets()


@pytest.fixture
def netns_host() -> Iterator[NetnsHost]:
    usable, reason = can_use_netns()
    if not usable:
        pytest.skip(reason)
    with namespace_host() as host:
        yield host


@pytest.fixture
def nginx_ingest() -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    with nginx_rtmp() as server:
        yield server

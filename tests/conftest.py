"""Shared fixtures: real peers (nginx-rtmp, network namespaces), the recorded fixtures, clean settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.redact import forget_registered_secrets
from tests.peers.netns import NetnsHost, can_use_netns, namespace_host
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.obs_studio import ObsStudio, obs_available, obs_studio
from tests.platform_neutral import as_on

REPO_ROOT = Path(__file__).resolve().parent.parent


FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The recorded OBS and ffmpeg traffic, kept in the repository (tests/fixtures/README.md says how it was
    recorded): the suite never looks outside the checkout, so a fresh clone passes alone."""
    if not FIXTURES_DIR.is_dir():
        pytest.fail(f"recorded fixtures not found at {FIXTURES_DIR}: the checkout is incomplete")
    return FIXTURES_DIR


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--as-platform",
        choices=("win32", "darwin"),
        help="run every test not marked linux_only with the Linux-only readers switched off, as on that platform",
    )


@pytest.fixture(autouse=True)
def _as_platform(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`--as-platform win32`: the platform-neutral suite as Windows would run it (tests/platform_neutral.py)."""
    platform = request.config.getoption("--as-platform")
    if platform is None or request.node.get_closest_marker("linux_only") is not None:
        yield
        return
    with as_on(platform, monkeypatch) as other:
        yield
    assert other.violations == [], f"Linux-only readers used around agent/os_features.py: {other.violations}"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's own config or env, or writes into their data folder."""
    for name in list(os.environ):
        if name.startswith("STREAMHEALTH_"):
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


@pytest.fixture
def start_obs() -> Iterator[Callable[..., ObsStudio]]:
    """Starts a real OBS Studio under Xvfb streaming to the rtmp URL given (tests/peers/obs_studio.py):
    `obs = start_obs("rtmp://10.231.5.2:1935/live", video_kbps=2500)`. Everything it started is stopped
    when the test ends, passed or failed. Skips when obs-studio, xvfb or ffmpeg is missing."""
    available, reason = obs_available()
    if not available:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:

        def start(rtmp_url: str, stream_key: str = "obs-test-key", **options: Any) -> ObsStudio:
            return stack.enter_context(obs_studio(rtmp_url, stream_key, **options))

        yield start

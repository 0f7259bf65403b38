"""Bandwidth tests that cannot succeed end with a clear result and a reason, never a hang or a crash."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from agent.bandwidth import run_bandwidth_test
from agent.errors import ConfigError
from agent.settings import Settings, load_settings
from tests.peers.bandwidth_server import bandwidth_server
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import free_port

pytestmark = pytest.mark.integration


class Reporter:
    def __init__(self) -> None:
        self.steps: list[tuple[str, str]] = []

    def report(self, step: str, fraction: float | None = None, message: str = "") -> None:
        self.steps.append((step, message))


def _settings(**environ: str) -> Settings:
    return load_settings(environ={f"STREAMHEALTH_{name.upper()}": value for name, value in environ.items()})


@contextlib.contextmanager
def stalling_http_server() -> Iterator[int]:
    """Answers pings, then stops reading an upload after its first 256 kB: a server that stalls mid-test."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        conn.settimeout(0.2)
        buffer = b""
        received = 0
        while not stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            if buffer.startswith(b"GET") and b"\r\n\r\n" in buffer:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                buffer = buffer.split(b"\r\n\r\n", 1)[1]
            elif buffer.startswith(b"POST"):
                received += len(data)
                if received > 256 * 1024:
                    held.append(conn)  # keep it open, read nothing more
                    return

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize("backend", ["http", "speedtest"])
async def test_refused_server_gives_a_failed_result_with_the_reason(backend: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = await asyncio.wait_for(
        run_bandwidth_test(_settings(), backend=backend, reporter=Reporter(), url=url, duration_s=2), 30
    )
    assert not result.ok
    assert result.upload_bps is None
    assert result.error is not None and "connect" in result.error
    assert result.recommended_video_kbps is None


@pytest.mark.parametrize("backend", ["http", "speedtest", "rtmp"])
async def test_unresolvable_name_gives_a_failed_result(backend: str) -> None:
    url = (
        "rtmp://streamhealth-test.invalid/app/somekey123" if backend == "rtmp" else "http://streamhealth-test.invalid/"
    )
    result = await asyncio.wait_for(
        run_bandwidth_test(_settings(), backend=backend, reporter=Reporter(), url=url, duration_s=2), 40
    )
    assert not result.ok
    assert result.error is not None
    assert "somekey123" not in result.model_dump_json()


async def test_server_that_stalls_mid_upload_is_reported_not_waited_for() -> None:
    with stalling_http_server() as port:
        result = await asyncio.wait_for(
            run_bandwidth_test(
                _settings(bandwidth__http_download="false"),
                backend="http",
                reporter=Reporter(),
                url=f"http://127.0.0.1:{port}",
                duration_s=4,
            ),
            40,
        )
    assert not result.ok
    assert result.error is not None and "stalled" in result.error
    assert result.duration_s <= 5


@pytest.fixture
def nginx_rejecting_keys() -> Iterator[NginxRtmp]:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)
    # on_publish to a port where nothing listens: nginx-rtmp refuses every publish.
    with nginx_rtmp(extra_application_config=f"on_publish http://127.0.0.1:{free_port()}/auth;") as server:
        yield server


async def test_rtmp_ingest_rejecting_the_key_gives_a_clear_reason_without_the_key(
    nginx_rejecting_keys: NginxRtmp,
) -> None:
    reporter = Reporter()
    result = await asyncio.wait_for(
        run_bandwidth_test(
            _settings(),
            backend="rtmp",
            reporter=reporter,
            url=nginx_rejecting_keys.url("secretstreamkey42"),
            duration_s=2,
        ),
        40,
    )
    assert not result.ok
    assert result.error is not None and "key" in result.error
    assert "secretstreamkey42" not in result.model_dump_json()
    assert any(step == "warning" and "real stream key" in message for step, message in reporter.steps)


async def test_rtmp_twitch_test_mode_is_added_and_no_warning_is_given(nginx_ingest: NginxRtmp) -> None:
    reporter = Reporter()
    settings = _settings(platform="twitch", bandwidth__rtmp_max_kbps="4000")
    result = await run_bandwidth_test(
        settings, backend="rtmp", reporter=reporter, url=nginx_ingest.url("live_123_abcdefghijk"), duration_s=2
    )
    assert result.ok, result.error
    assert not any(step == "warning" for step, _ in reporter.steps)
    assert "bandwidthtest=true" in nginx_ingest.error_log


async def test_missing_configuration_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"bandwidth\.http_url"):
        await run_bandwidth_test(_settings(), backend="http", reporter=Reporter())
    with pytest.raises(ConfigError, match=r"ingest\.primary"):
        await run_bandwidth_test(_settings(), backend="rtmp", reporter=Reporter())
    with pytest.raises(ConfigError, match="unknown bandwidth backend"):
        await run_bandwidth_test(_settings(), backend="carrier-pigeon", reporter=Reporter())


@pytest.mark.parametrize("backend", ["http", "speedtest"])
async def test_a_running_test_stops_promptly_when_cancelled(backend: str) -> None:
    with bandwidth_server() as server:
        task = asyncio.create_task(
            run_bandwidth_test(_settings(), backend=backend, reporter=Reporter(), url=server.url + "/", duration_s=30)
        )
        await asyncio.sleep(2.0)
        assert not task.done()
        task.cancel()
        started = asyncio.get_running_loop().time()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert asyncio.get_running_loop().time() - started < 5

"""The publisher against real peers: nginx-rtmp accepts and serves back our synthetic stream; rejected keys,
wrong apps, silent servers, refused ports, dropped connections and untrusted TLS end in clear errors, fast,
without the stream key in any message or log line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.rtmp import flv
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher, parse_rtmp_url, publish_synthetic
from agent.rtmp.errors import IngestConnectionLost, IngestRejected, IngestTimeout, IngestUnreachable
from agent.rtmp.synthetic import SyntheticStream
from tests.agent.rtmp.mini_ingest import mini_ingest
from tests.peers.nginx_rtmp import NginxRtmp, nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import async_wait_until, free_port

SECRET = "sh-secret-key-4711"


# ------------------------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rtmp://live.twitch.tv/app/live_123_abc?bandwidthtest=true",
            ("rtmp", "live.twitch.tv", 1935, "app", "live_123_abc?bandwidthtest=true", "rtmp://live.twitch.tv/app"),
        ),
        (
            "rtmps://live-api-s.facebook.com:443/rtmp/FB-1-2",
            ("rtmps", "live-api-s.facebook.com", 443, "rtmp", "FB-1-2", "rtmps://live-api-s.facebook.com:443/rtmp"),
        ),
        ("rtmps://ingest.example/live/k", ("rtmps", "ingest.example", 443, "live", "k", "rtmps://ingest.example/live")),
        ("RTMP://127.0.0.1:1936/live/a/b", ("rtmp", "127.0.0.1", 1936, "live", "a/b", "rtmp://127.0.0.1:1936/live")),
    ],
)
def test_urls_split_into_app_and_key_as_encoders_do(url: str, expected: tuple[object, ...]) -> None:
    parsed = parse_rtmp_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.app, parsed.stream_key, parsed.tc_url) == expected


def test_redacted_url_hides_the_key_and_keeps_the_bandwidth_test_flag() -> None:
    parsed = parse_rtmp_url(f"rtmp://live.twitch.tv/app/{SECRET}?bandwidthtest=true")
    assert SECRET not in parsed.redacted()
    assert parsed.redacted() == "rtmp://live.twitch.tv/app/<redacted>?bandwidthtest=true"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://host/live/{SECRET}", "not an rtmp"),
        (f"rtmp:///live/{SECRET}", "no host"),
        ("rtmp://host", "no application"),
        ("rtmp://host/live", "no stream key"),
        (f"rtmp://host:99999/live/{SECRET}", "invalid port"),
    ],
)
def test_unusable_urls_are_config_errors_without_the_key(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        parse_rtmp_url(url)
    assert SECRET not in str(caught.value)


# ------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _http_answering(status: int) -> Iterator[int]:
    """A tiny HTTP server for nginx-rtmp's on_publish hook; answers every POST with `status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _require_nginx() -> None:
    available, reason = nginx_rtmp_available()
    if not available:
        pytest.skip(reason)


def _assert_no_secret(caplog: pytest.LogCaptureFixture, error: BaseException | None = None) -> None:
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    if error is not None:
        assert SECRET not in str(error)


async def _ffprobe(url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-analyzeduration", "1500000", "-show_streams", "-of", "json", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


# ------------------------------------------------------------------------------------- real peers


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe (apt install ffmpeg)")
async def test_nginx_accepts_the_synthetic_stream_and_serves_it_back_as_h264_and_aac(
    nginx_ingest: NginxRtmp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = nginx_ingest.url(f"{SECRET}?bandwidthtest=true")
    stream = SyntheticStream(width=640, height=360, fps=30, video_bitrate_bps=1_500_000, keyframe_interval_s=1)
    probe: asyncio.subprocess.Process | None = None
    try:
        async with RtmpPublisher(url, timeout_s=10, ack_window_bytes=64 * 1024) as publisher:
            assert publisher.publishing and publisher.stream_id == 1
            assert publisher.server_info["code"] == "NetConnection.Connect.Success"
            probe = await _ffprobe(nginx_ingest.url(SECRET))
            await publish_synthetic(publisher, stream, 3.0)
            sent = publisher.bytes_sent
            await async_wait_until(
                lambda: (publisher.peer_acknowledged_bytes or 0) >= sent - 64 * 1024, 5, "nginx to acknowledge"
            )
            acknowledged = publisher.peer_acknowledged_bytes
            assert publisher.socket is not None and publisher.socket.fileno() >= 0
        out, err = await asyncio.wait_for(probe.communicate(), 20)
    finally:
        if probe is not None and probe.returncode is None:
            probe.kill()
            await probe.wait()
    assert f"publish: name='{SECRET}' args='bandwidthtest=true'" in nginx_ingest.error_log
    streams = {s["codec_type"]: s for s in json.loads(out)["streams"]}
    assert streams["video"]["codec_name"] == "h264", err.decode()
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert (streams["audio"]["codec_name"], streams["audio"]["sample_rate"]) == ("aac", "48000")
    # nginx acknowledged every 64 KiB: all but the last window of what we sent.
    assert sent > 3 * 1_500_000 / 8 * 0.9
    assert acknowledged is not None and sent - 64 * 1024 <= acknowledged <= sent
    _assert_no_secret(caplog)


@pytest.mark.integration
async def test_a_key_refused_by_the_ingest_is_a_clear_rejection_not_a_hang(caplog: pytest.LogCaptureFixture) -> None:
    _require_nginx()
    caplog.set_level(logging.DEBUG)
    with (
        _http_answering(403) as auth_port,
        nginx_rtmp(extra_application_config=f"on_publish http://127.0.0.1:{auth_port}/auth;") as server,
    ):
        started = time.monotonic()
        with pytest.raises(IngestRejected, match=r"rejected the stream key.*ingest\.primary") as caught:
            await RtmpPublisher(server.url(SECRET), timeout_s=5).start()
        assert time.monotonic() - started < 5
        assert "notify: publish" in server.error_log
    _assert_no_secret(caplog, caught.value)


@pytest.mark.integration
async def test_an_unknown_application_is_a_clear_rejection(nginx_ingest: NginxRtmp) -> None:
    url = f"rtmp://{nginx_ingest.host}:{nginx_ingest.port}/wrongapp/{SECRET}"
    with pytest.raises(IngestRejected, match="application 'wrongapp'") as caught:
        await RtmpPublisher(url, timeout_s=5).start()
    assert SECRET not in str(caught.value)
    assert "application not found" in nginx_ingest.error_log


@pytest.mark.integration
async def test_a_dropped_connection_while_streaming_is_reported_as_lost(nginx_ingest: NginxRtmp) -> None:
    stream = SyntheticStream(video_bitrate_bps=500_000)
    async with RtmpPublisher(nginx_ingest.url(SECRET), timeout_s=5) as publisher:
        await publish_synthetic(publisher, stream, 0.5)
        nginx_ingest.process.kill()
        nginx_ingest.process.wait(5)
        with pytest.raises(IngestConnectionLost) as caught:
            await publish_synthetic(publisher, stream, 10.0, send_headers=False)
    assert SECRET not in str(caught.value)


async def test_publish_bad_name_status_is_a_rejection_naming_the_status() -> None:
    async with mini_ingest(reject_names={SECRET}) as ingest:
        with pytest.raises(IngestRejected, match=r"NetStream\.Publish\.BadName") as caught:
            await RtmpPublisher(f"rtmp://127.0.0.1:{ingest.port}/live/{SECRET}", timeout_s=5).start()
    assert SECRET not in str(caught.value)


async def test_publisher_sends_what_obs_sends_and_unpublishes_on_close() -> None:
    async with mini_ingest() as ingest:
        async with RtmpPublisher(f"rtmp://127.0.0.1:{ingest.port}/live/{SECRET}", timeout_s=5) as publisher:
            stream = SyntheticStream()
            await publish_synthetic(publisher, stream, 0.2)
        await async_wait_until(lambda: ingest.closed_sessions > 0, 5, "the ingest to see the connection close")
    commands = [e for e in ingest.events if isinstance(e, m.Command)]
    assert [c.name for c in commands] == [
        "connect", "releaseStream", "FCPublish", "createStream", "publish", "FCUnpublish", "deleteStream",
    ]  # fmt: skip
    assert commands[0].command_object == {
        "app": "live",
        "type": "nonprivate",
        "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
        "swfUrl": f"rtmp://127.0.0.1:{ingest.port}/live",
        "tcUrl": f"rtmp://127.0.0.1:{ingest.port}/live",
    }
    assert commands[4].arguments == (SECRET, "live") and commands[4].stream_id == 1
    assert commands[6].arguments == (1.0,)
    video = [e for e in ingest.events if isinstance(e, m.VideoMessage)]
    assert flv.is_avc_sequence_header(video[0].payload) and flv.is_keyframe(video[1].payload)
    assert not ingest.errors


async def test_a_server_that_never_answers_the_handshake_times_out() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(IngestTimeout, match="handshake") as caught:
            await RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/{SECRET}", timeout_s=0.5).start()
        assert time.monotonic() - started < 3
        assert SECRET not in str(caught.value)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_refused_port_is_unreachable_with_the_next_step() -> None:
    with pytest.raises(IngestUnreachable, match=r"check ingest\.primary") as caught:
        await RtmpPublisher(f"rtmp://127.0.0.1:{free_port()}/live/{SECRET}", timeout_s=2).start()
    assert SECRET not in str(caught.value)


# -------------------------------------------------------------------------------------------- RTMPS


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@contextlib.asynccontextmanager
async def _tls_terminator(cert: Path, key: Path, upstream_port: int) -> AsyncIterator[int]:
    """What a CDN's rtmps edge does: TLS outside, plain RTMP to the ingest behind it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        for task in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.integration
async def test_rtmps_publishes_through_tls_with_a_verified_certificate(
    nginx_ingest: NginxRtmp, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    async with _tls_terminator(cert, key, nginx_ingest.port) as tls_port:
        context = ssl.create_default_context(cafile=str(cert))
        async with RtmpPublisher(f"rtmps://127.0.0.1:{tls_port}/live/{SECRET}", ssl_context=context) as publisher:
            await publish_synthetic(publisher, SyntheticStream(video_bitrate_bps=300_000), 0.3)
            assert publisher.publishing
    assert f"publish: name='{SECRET}'" in nginx_ingest.error_log


@pytest.mark.integration
async def test_rtmps_refuses_a_certificate_it_cannot_verify(
    nginx_ingest: NginxRtmp, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    async with _tls_terminator(cert, key, nginx_ingest.port) as tls_port:
        with pytest.raises(IngestUnreachable, match="could not be verified"):
            await RtmpPublisher(f"rtmps://127.0.0.1:{tls_port}/live/{SECRET}", timeout_s=5).start()
    assert "publish:" not in nginx_ingest.error_log

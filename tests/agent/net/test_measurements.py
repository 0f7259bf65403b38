"""The pure parts of network measurement: windows, jitter, TCP_INFO parsing, `ss` parsing, link facts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.bandwidth.result import percentile, recommended_video_kbps, sustained_bps
from agent.net.link import UploadUsersScanner, wifi_signal_dbm
from agent.net.stability import TargetWindow
from agent.net.tcpinfo import read_bytes_acked, read_tcp_info
from agent.settings import BandwidthSettings


def test_window_percentiles_loss_and_expiry() -> None:
    window = TargetWindow(keep_s=60)
    for second, rtt in enumerate([10.0, 20.0, None, 30.0, 40.0]):
        window.record(float(second), rtt)
    stats = window.window(now=4.0, span_s=10)
    assert (stats.rtt_p50_ms, stats.rtt_p95_ms, stats.rtt_max_ms) == (20.0, 40.0, 40.0)
    assert stats.loss_ratio == 0.2
    window.record(100.0, 5.0)  # everything older than 60 s is dropped
    assert window.window(now=100.0, span_s=60).probes == 1


def test_jitter_is_the_rfc3550_smoothed_mean_of_rtt_differences() -> None:
    window = TargetWindow()
    window.record(0, 10.0)
    window.record(1, 26.0)  # |D| = 16 -> J = 0 + (16 - 0) / 16 = 1
    assert window.jitter_ms == 1.0
    window.record(2, 10.0)  # |D| = 16 -> J = 1 + (16 - 1) / 16
    assert window.jitter_ms == 1.0 + 15 / 16
    window.record(3, None)  # a lost probe does not move jitter
    assert window.jitter_ms == 1.0 + 15 / 16


@pytest.mark.linux_only
def test_tcp_info_of_a_real_connection_counts_acknowledged_bytes() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        client.sendall(b"a" * 50_000)
        received = 0
        while received < 50_000:
            received += len(peer.recv(65536))
        info = read_tcp_info(client)
        assert info is not None
        assert info.bytes_acked >= 50_000
        assert info.rtt_ms >= 0 and info.retransmits_total == 0
        assert read_bytes_acked(client) == info.bytes_acked  # the relay's cheap read gives the same figure
    finally:
        for sock in (client, peer, server):
            sock.close()


SS_FIRST = """ESTAB 0 0 10.0.0.5:50000 1.2.3.4:443 users:(("uploader",pid=4242,fd=5))
\t cubic rtt:10/5 bytes_sent:1000000 bytes_acked:1000000 bytes_received:100
ESTAB 0 0 10.0.0.5:50001 1.2.3.5:443 users:(("idle",pid=77,fd=3))
\t cubic rtt:10/5 bytes_acked:500 bytes_received:100
"""
SS_SECOND = """ESTAB 0 0 10.0.0.5:50000 1.2.3.4:443 users:(("uploader",pid=4242,fd=5))
\t cubic rtt:10/5 bytes_sent:3500000 bytes_acked:3500000 bytes_received:100
ESTAB 0 0 10.0.0.5:50001 1.2.3.5:443 users:(("idle",pid=77,fd=3))
\t cubic rtt:10/5 bytes_acked:600 bytes_received:100
ESTAB 0 0 10.0.0.5:50002 1.2.3.6:443 users:(("ourselves",pid=1,fd=3))
\t cubic rtt:10/5 bytes_acked:90000000 bytes_received:100
"""


def test_upload_users_are_rates_between_two_scans_without_ourselves_or_idle_processes() -> None:
    scanner = UploadUsersScanner(own_pid=1)
    assert scanner.update(SS_FIRST, now=100.0) == []  # one scan gives no rate yet
    users = scanner.update(SS_SECOND, now=110.0)
    assert [(user.pid, user.name) for user in users] == [(4242, "uploader")]
    assert users[0].sent_bps == 2_000_000.0  # 2.5 MB in 10 s


def test_wifi_signal_is_read_from_proc_net_wireless(tmp_path: Path) -> None:
    table = tmp_path / "wireless"
    table.write_text(
        "Inter-| sta-|   Quality        |   Discarded packets\n"
        " face | tus | link level noise |  nwid  crypt   frag\n"
        "wlp2s0: 0000   54.  -56.  -256        0      0      0\n"
    )
    assert wifi_signal_dbm("wlp2s0", table) == -56.0
    assert wifi_signal_dbm("eth0", table) is None


def test_sustained_upload_is_a_low_percentile_after_ramp_up_and_drives_the_recommendation() -> None:
    windows = [50e6, 9e6, 10e6, 10e6, 11e6, 10e6]  # a burst while buffers fill, then steady
    assert sustained_bps(windows, skip=1, pct=10) == percentile([9e6, 10e6, 10e6, 11e6, 10e6], 10)
    assert sustained_bps(windows, skip=1, pct=10) < 10e6 < max(windows)
    settings = BandwidthSettings(headroom_ratio=0.7, audio_bitrate_kbps=160)
    assert recommended_video_kbps(10e6, settings) == 7000 - 160
    assert recommended_video_kbps(100e3, settings) == 0


def test_speedtest_upload_bodies_match_their_content_length() -> None:
    import speedtest

    from agent.bandwidth.speedtest_backend import UPLOAD_SIZES

    for size in UPLOAD_SIZES:
        data = speedtest.HTTPUploaderData(size, start=0, timeout=60)
        data.pre_allocate()
        assert len(data.data.getvalue()) == size, f"speedtest-cli builds a short body for {size}"


def test_speedtest_known_failures_become_reasons_with_a_next_step() -> None:
    import speedtest

    from agent.bandwidth.speedtest_backend import explain
    from agent.settings import load_settings

    insecure = load_settings(environ={"STREAMHEALTH_BANDWIDTH__SPEEDTEST_SECURE": "false"})
    forbidden = explain(speedtest.ConfigRetrievalError("HTTP Error 403: Forbidden"), "speedtest.net", insecure)
    assert "speedtest_secure = true" in forbidden
    blocked = explain(speedtest.ConfigRetrievalError("<urlopen error timed out>"), "speedtest.net", insecure)
    assert "--url" in blocked and "--backend http" in blocked
    pinned = load_settings(environ={"STREAMHEALTH_BANDWIDTH__SPEEDTEST_SERVER_ID": "999999"})
    assert "999999" in explain(speedtest.NoMatchedServers(), "speedtest.net server 999999", pinned)
    assert "latency" in explain(speedtest.SpeedtestBestServerFailure(), "speedtest.net", pinned)

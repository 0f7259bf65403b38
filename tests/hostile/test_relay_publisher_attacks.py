"""Attacks that need the attacker to be the publisher (so no healthy stream can flow beside it: the relay
carries one stream): a queue filled with what it never dropped, and an encoder name that forges log lines.
A real agent process; the RSS and event-loop figures of tests/hostile/test_relay_attacks.py (the loop's
with a wider margin: this attacker is a publisher pushing about a gigabit a second)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from agent.rtmp import amf0
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from agent.rtmp.connection import Role, RtmpConnection
from tests.hostile.relay_bed import LagProbe, RssWatch, running_agent
from tests.peers.nginx_rtmp import nginx_rtmp, nginx_rtmp_available
from tests.peers.wait import free_port, wait_until

pytestmark = [pytest.mark.integration]

MIB = 1024 * 1024


def test_300_sequence_headers_and_text_messages_of_1_mb_toward_an_unreachable_ingest_stay_within_max_queue_bytes(
    tmp_path: Path,
) -> None:
    unreachable = f"rtmp://127.0.0.1:{free_port()}/live/key"  # nothing listens there
    with running_agent(tmp_path, unreachable) as agent:
        rss = RssWatch(agent.process.pid)
        lag = LagProbe(agent.relay_port)
        since = time.monotonic()
        queue_bytes: list[int] = []

        async def attack() -> None:
            async with RtmpPublisher(f"rtmp://127.0.0.1:{agent.relay_port}/live/anykey") as publisher:
                for index in range(300):
                    header = b"\x17\x00" + bytes(3) + bytes([1, 0x64, 0, 0x1F, 0xFF]) + bytes(1_000_000)
                    await publisher.send_video(index, header)
                    text = amf0.encode("onTextData", {"text": "x" * 1_000_000})
                    publisher.connection._send(5, index, m.DATA_AMF0, publisher._require_stream(), text)
                    await publisher.drain()
                    if index % 50 == 0:
                        sample = await asyncio.to_thread(agent.relay_sample)
                        queue_bytes.append(int(sample["queue_bytes"]))  # type: ignore[call-overload]
                await asyncio.sleep(2)  # a relay sample with everything queued
                sample = await asyncio.to_thread(agent.relay_sample)
                queue_bytes.append(int(sample["queue_bytes"]))  # type: ignore[call-overload]

        try:
            asyncio.run(attack())
        finally:
            lag.stop()
            rss.stop()
        figures = {
            "rss_growth_mb": round(rss.growth_mb, 1),
            "worst_loop_lag_s": round(lag.worst_s(since), 4),
            "queue_mib_max": round(max(queue_bytes) / MIB, 1),
        }
        print("figures:", figures)
        assert max(queue_bytes) <= 64 * MIB, figures  # relay.max_queue_bytes, everything counted
        assert queue_bytes[-1] > 10 * MIB, figures  # it did hold what it could: the bound is what stopped it
        assert figures["rss_growth_mb"] < 100, figures
        # A publisher (past the key check) pushing 600 MB in a few seconds keeps the agent's core busy: the
        # ping waits up to 100-400 ms here, with or without the bounds (measured; uvloop's figures are the
        # higher). Asserted: no stall of seconds, as the unbounded queue's 286 MiB of copies caused.
        assert figures["worst_loop_lag_s"] < 1.0, figures


@pytest.mark.skipif(not nginx_rtmp_available()[0], reason=nginx_rtmp_available()[1])
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_flashver_with_a_newline_and_ansi_codes_forges_no_log_line_and_shows_clean_in_the_api(
    tmp_path: Path,
) -> None:
    forged = "FMLE/3.0\n12:00:00 ERROR agent.runtime: \x1b[31mthe ingest key is leaked\x1b[0m\r\x1b]0;owned\x07"
    with nginx_rtmp() as nginx, running_agent(tmp_path, nginx.url("key")) as agent:

        async def publish() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", agent.relay_port)
            client = RtmpConnection(Role.CLIENT)
            writer.write(client.data_to_send())
            while not client.handshake_complete:
                client.receive_data(await reader.read(65536))
                writer.write(client.data_to_send())
            client.send_command("connect", 1, {"app": "live", "flashVer": forged, "tcUrl": "rtmp://x/live"})
            client.send_command("createStream", 2, None)
            client.send_command("publish", 3, None, "anykey", "live", stream_id=1)
            writer.write(client.data_to_send())
            await writer.drain()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                health = await asyncio.to_thread(agent.health)
                relay = health["relay"]
                if isinstance(relay, dict) and relay.get("publishing"):
                    break
                await asyncio.sleep(0.2)
            writer.close()

        asyncio.run(publish())
        wait_until(lambda: "is publishing" in agent.log, 10, "the publishing line in the agent's log")
        health_text = json.dumps(agent.health())
    log = agent.log
    assert "\x1b" not in log and "\r" not in log and "\x07" not in log
    assert not any(line.startswith("12:00:00 ERROR") for line in log.splitlines()), log
    (line,) = [line for line in log.splitlines() if "is publishing" in line]
    assert "FMLE/3.0 12:00:00 ERROR agent.runtime: the ingest key is leaked" in line
    assert "\\u001b" not in health_text and "\\n12:00" not in health_text

"""`relay point-obs` without a restart: the running relay takes the ingest the settings layer names, between
streams only; an ingest from the user's own config wins over the layer."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from agent import paths
from agent.models import Sample
from agent.relay.ingest_layer import IngestLayerWatch
from agent.relay.settings import RelaySettings
from agent.relay.source import RelaySource
from agent.rtmp import messages as m
from agent.rtmp.client import RtmpPublisher
from agent.settings import IngestSettings
from tests.agent.relay.helpers import until
from tests.agent.rtmp.mini_ingest import MiniIngest, mini_ingest


class _Sink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def publish(self, source: str, sample: Sample) -> None:
        self.samples.append(sample)

    def report_failure(self, source: str, message: str) -> None:
        raise AssertionError(message)


def write_layer(url: str) -> Path:
    path = paths.relay_ingest_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(f'[ingest]\nprimary = "{url}"\n')
    os.utime(path, ns=(previous + 10**9, previous + 10**9))  # a new mtime even within the clock's resolution
    return path


def published(ingest: MiniIngest) -> int:
    return sum(1 for e in ingest.events if isinstance(e, m.Command) and e.name == "publish")


async def _publish_a_little(port: int) -> None:
    async with RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/x") as encoder:
        for index in range(5):
            await encoder.send_video(
                index * 33, (b"\x17" if index == 0 else b"\x27") + b"\x01\x00\x00\x00" + bytes(100)
            )


async def test_a_new_ingest_in_the_settings_layer_is_taken_between_streams_without_a_restart() -> None:
    async with mini_ingest() as first, mini_ingest() as second:
        first_url = f"rtmp://127.0.0.1:{first.port}/live/k"
        write_layer(first_url)
        settings = RelaySettings.model_validate({"listen": "127.0.0.1:0", "hold_s": 0})
        source = RelaySource(settings, IngestSettings(primary=first_url), interval_s=0.1)
        task = asyncio.create_task(source.run(_Sink()))
        relay = source.relay
        try:
            await until(lambda: relay.listening, 10, "the relay to listen")
            port = relay.port
            assert port is not None
            async with RtmpPublisher(f"rtmp://127.0.0.1:{port}/live/x") as encoder:
                await encoder.send_video(0, b"\x17\x01\x00\x00\x00" + bytes(100))
                await until(lambda: published(first) == 1, 10, "the stream at the first ingest")
                write_layer(f"rtmp://127.0.0.1:{second.port}/live/k2")  # point-obs while live
                await asyncio.sleep(0.5)
                assert relay.ingest_urls == [first_url]  # a live stream never moves
                await encoder.send_video(33, b"\x27\x01\x00\x00\x00" + bytes(100))
            await until(lambda: relay.ingest_urls != [first_url], 10, "the relay to take the new ingest")
            await _publish_a_little(port)
            await until(lambda: published(second) == 1, 10, "the next stream at the new ingest")
            assert published(first) == 1
            assert relay.destinations[0].name == f"127.0.0.1:{second.port}"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await source.close()


def test_an_ingest_from_the_users_config_wins_and_the_layer_is_not_followed(tmp_path: Path) -> None:
    layer = write_layer("rtmp://127.0.0.1:1/live/from-obs")
    watch = IngestLayerWatch("rtmp://127.0.0.1:2/live/from-my-config", layer)
    write_layer("rtmp://127.0.0.1:3/live/newer")
    assert not watch.follows and watch.poll() is None


def test_the_layer_removed_by_undo_means_no_ingest_and_a_broken_layer_changes_nothing(tmp_path: Path) -> None:
    layer = write_layer("rtmp://127.0.0.1:1/live/k")
    watch = IngestLayerWatch("rtmp://127.0.0.1:1/live/k", layer)
    assert watch.follows and watch.poll() is None
    layer.write_text("[ingest]\nprimary = 'http://not-rtmp'\n")
    os.utime(layer, ns=(1, 1))
    assert watch.poll() is None
    layer.unlink()
    assert watch.poll() == ""

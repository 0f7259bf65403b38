"""The `[relay]` settings section: where the local RTMP relay listens, its queue and drop policy, failover.

Part of the settings tree (beside settings_base.py), not of agent/relay/: the tree never imports the relay,
and the relay receives this section from whoever starts it (agent/relay/source.py, `relay_sources`)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator

from agent.net.addresses import is_loopback_host
from agent.settings_base import IngestUrl, Section


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:1935")
    return value


def _check_ca_file(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a file (a PEM file of CA certificates to trust for rtmps://)")
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise ValueError(f"{path} holds no usable PEM CA certificate ({exc})") from exc
    return path


def _check_slate_image(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a file (a PNG or JPEG picture for the slate)")
    return path


class RelaySettings(Section):
    """The local RTMP relay (agent/relay/): listens when an ingest is configured and `enabled` is true."""

    enabled: bool = True
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:1935"
    disposable_drop_ms: int = Field(700, gt=0, le=60_000)
    inter_drop_ms: int = Field(900, gt=0, le=60_000)
    max_queue_ms: int = Field(10_000, gt=0, le=120_000)
    max_queue_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024, le=1024 * 1024 * 1024)
    chunk_size: int = Field(65536, ge=128, le=16 * 1024 * 1024)
    stall_ms: int = Field(2000, gt=0, le=60_000)
    idle_timeout_s: float = Field(10.0, gt=0, le=600)
    handshake_timeout_s: float = Field(
        5.0, gt=0, le=60, description="An encoder connection must finish the RTMP handshake this long after it opens."
    )
    # What one encoder may make the relay hold (agent/relay/encoder_link.py). Before it publishes, a
    # connection gets far less: 64 KiB commands, 128 KiB held, whatever these say.
    max_frame_bytes: int = Field(
        8 * 1024 * 1024,
        ge=64 * 1024,
        le=16 * 1024 * 1024 - 1,
        description="The largest audio/video message a publishing encoder may send (a 4K keyframe is about 2 MB).",
    )
    max_data_message_bytes: int = Field(
        1024 * 1024,
        ge=4 * 1024,
        le=16 * 1024 * 1024 - 1,
        description="The largest command or data message (onMetaData, onTextData) a publishing encoder may send.",
    )
    max_connections: int = Field(
        32, ge=2, le=10_000, description="Encoder connections at once; past it, the oldest not publishing is closed."
    )
    ingest_timeout_s: float = Field(10.0, gt=0, le=120)
    finish_timeout_s: float = Field(5.0, ge=0, le=120)
    # Resilience toward the ingest (agent/relay/failover.py).
    stall_s: float = Field(3.0, gt=0, le=120, description="Nothing acknowledged this long while media waits: lost.")
    failover_after_s: float = Field(3.0, ge=0, le=600, description="Reconnect this long, then try the next ingest.")
    return_to_primary: Literal["never", "after_probe"] = "never"
    return_after_s: float = Field(30.0, gt=0, le=3600, description="The primary answered probes this long: go back.")
    destinations: list[IngestUrl] = Field(
        default_factory=list, description="More ingests that get the same stream, each on its own (e.g. YouTube)."
    )
    # rtmps:// is always verified against the system's CAs; ca_file adds more (a private CA), never fewer.
    ca_file: Annotated[Path, AfterValidator(_check_ca_file)] | None = None
    publish_key: SecretStr | None = Field(
        None, description="The stream key encoders must publish with; required when listening beyond loopback."
    )
    event_loop: Literal["auto", "asyncio"] = Field(
        "auto",
        description="auto: uvloop while the relay runs, where installed (less CPU per frame, ~2 MB more RSS).",
    )
    # Disconnect protection (agent/relay/hold.py): an encoder lost without unpublishing leaves the broadcast
    # held with a "be right back" slate this long; 0 ends the stream at once, as a clean stop does.
    hold_s: float = Field(120.0, ge=0, le=3600, description="Hold a lost encoder's broadcast with the slate this long.")
    slate_image: Annotated[Path, AfterValidator(_check_slate_image)] | None = Field(
        None, description="A picture (PNG, JPEG) for the slate instead of 'BE RIGHT BACK'; scaled to the stream."
    )
    fast_lane: bool = Field(
        True,
        description="Forward a live stream's media as it is read and note it about once a second "
        "(agent/relay/fast_lane.py: about 15 % less CPU); false notes every frame as it passes.",
    )
    read_batch_ms: float = Field(
        15.0,
        ge=0,
        le=40,
        description="While a stream is live, wake when this much of it has arrived, not for each small audio "
        "message (agent/relay/read_batching.py: about 40 % less CPU; an audio frame may wait up to a frame "
        "interval, never over 50 ms); 0 reads every message as it comes.",
    )

    @model_validator(mode="after")
    def _key_beyond_loopback(self) -> RelaySettings:
        if not is_loopback_host(self.host) and self.publish_key is None:
            raise ValueError(
                f"relay.listen = {self.listen} accepts encoders from other machines: set relay.publish_key "
                "(the stream key they must use), or listen on 127.0.0.1"
            )
        if self.publish_key is not None and not self.publish_key.get_secret_value():
            raise ValueError("relay.publish_key is empty")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

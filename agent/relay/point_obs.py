"""`streamhealth relay point-obs`: move OBS's stream server to the relay, keeping OBS's own server and key
as the relay's ingest, so nobody copies a stream key by hand; `undo` puts OBS back.

Through obs-websocket: refuses while OBS is streaming (changing the service then would do nothing until
the next start, and the user would not know which server the live stream uses). The original settings are
written to the agent's data folder, readable by the user only, and never printed: what is shown is the
host, with the key redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent import paths
from agent.errors import StreamHealthError
from agent.obs.client import ObsClient
from agent.redact import redact_url, register_secret
from agent.settings import Settings

RELAY_STREAM_KEY = "relay"  # what OBS sends to the relay; the relay ignores it


class PointObsError(StreamHealthError):
    """OBS cannot be pointed at the relay (or back) right now; the message says why and what to do."""


@dataclass(frozen=True)
class PointResult:
    changed: bool
    message: str


def relay_server_url(settings: Settings) -> str:
    host = settings.relay.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"rtmp://{host}:{settings.relay.port}/live"


def ingest_url_from_service(service: dict[str, Any]) -> str:
    """The rtmp(s) URL with key that OBS's stream service settings stand for; PointObsError if there is none."""
    settings = service.get("streamServiceSettings") or {}
    server = str(settings.get("server") or "").strip()
    key = str(settings.get("key") or "").strip()
    kind = service.get("streamServiceType")
    if not server.lower().startswith(("rtmp://", "rtmps://")):
        service_name = settings.get("service") or kind
        raise PointObsError(
            f"OBS's stream server is {server or 'not set'!r} ({service_name}), not an rtmp:// or rtmps:// address: "
            "in OBS pick a specific server (Settings > Stream), or set ingest.primary yourself and point OBS at "
            "the relay by hand"
        )
    if not key:
        raise PointObsError("OBS has no stream key set (Settings > Stream): set it there first")
    if settings.get("use_auth"):
        raise PointObsError("OBS's stream uses a username and password, which the relay cannot forward yet")
    register_secret(key)
    return f"{server.rstrip('/')}/{key}"


async def _not_live(client: ObsClient) -> None:
    status = await client.request("GetStreamStatus")
    if status.get("outputActive") or status.get("outputReconnecting"):
        raise PointObsError("OBS is streaming: stop the stream in OBS first, then run this again")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


# How long point-obs waits for a running agent's relay to start: three beats at the default 1 s sampling.
STANDBY_START_S: Final = 3.0


async def point_obs_at_relay(client: ObsClient, settings: Settings) -> PointResult:
    await _not_live(client)
    service = await client.request("GetStreamServiceSettings")
    relay_url = relay_server_url(settings)
    current = (service.get("streamServiceSettings") or {}).get("server")
    if current == relay_url:
        return PointResult(False, f"OBS already streams to the relay at {relay_url}")
    ingest_url = ingest_url_from_service(service)
    _write_private(paths.obs_original_service_file(), json.dumps(service, indent=2))
    _write_private(
        paths.relay_ingest_file(),
        "# Written by `streamhealth relay point-obs`: OBS's own server and key, the relay's ingest.\n"
        "# `streamhealth relay point-obs --undo` removes it. Your config's ingest.primary wins over this.\n"
        f"[ingest]\nprimary = {json.dumps(ingest_url)}\n",
    )
    await client.request(
        "SetStreamServiceSettings",
        {
            "streamServiceType": "rtmp_custom",
            "streamServiceSettings": {"server": relay_url, "key": RELAY_STREAM_KEY, "use_auth": False},
        },
    )
    message = f"OBS now streams to the relay at {relay_url}; the relay forwards to {redact_url(ingest_url)}"
    if settings.ingest.primary and settings.ingest.primary != ingest_url:
        message += f" (but your config sets ingest.primary to {redact_url(settings.ingest.primary)}, which wins)"
    if await _relay_listening(settings):
        # A running relay reads the layer and takes the new ingest between streams (agent/relay/ingest_layer.py).
        return PointResult(True, message + "; the running relay takes it from the next stream, no restart needed.")
    # An agent running with no ingest starts its relay at its next beat (agent/relay/standby.py).
    deadline = asyncio.get_running_loop().time() + STANDBY_START_S
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        if await _relay_listening(settings):
            return PointResult(True, message + "; the running agent started its relay, no restart needed.")
    return PointResult(
        True, message + ". Start the agent so the relay listens (with relay.enabled true, as by default)."
    )


async def _relay_listening(settings: Settings) -> bool:
    """Whether something listens where the relay should (the agent's relay, as far as we can tell)."""
    host = settings.relay.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, settings.relay.port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def undo_point_obs(client: ObsClient) -> PointResult:
    saved = paths.obs_original_service_file()
    if not saved.is_file():
        return PointResult(False, "nothing to undo: `relay point-obs` has not changed OBS on this machine")
    try:
        service = json.loads(saved.read_text(encoding="utf-8"))
        kind, service_settings = service["streamServiceType"], service["streamServiceSettings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PointObsError(f"{saved} is unreadable ({type(exc).__name__}): set OBS's server by hand") from exc
    await _not_live(client)
    await client.request(
        "SetStreamServiceSettings", {"streamServiceType": kind, "streamServiceSettings": service_settings}
    )
    saved.unlink(missing_ok=True)
    paths.relay_ingest_file().unlink(missing_ok=True)
    server = str(service_settings.get("server") or "")
    return PointResult(True, f"OBS streams to {redact_url(server) if server else 'its original service'} again")

"""`streamhealth relay point-obs [--undo]`: point OBS at the local relay (or back), through obs-websocket."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent.errors import StreamHealthError
from agent.redact import redact
from agent.settings import Settings

HELP = "the local RTMP relay: point OBS at it (point-obs), or back (point-obs --undo)"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("relay", parents=[common], help=HELP, description=HELP + ".")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    point = actions.add_parser(
        "point-obs",
        parents=[common],
        help="move OBS's stream server to the relay; OBS's own server and key become the relay's ingest",
        description="Through obs-websocket (sources.obs.url / password), when OBS is not streaming: OBS's "
        "server and key are kept in the agent's data folder as the relay's ingest, and OBS streams to the relay.",
    )
    point.add_argument("--undo", action="store_true", help="put OBS's original server and key back")
    point.set_defaults(command=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        message = asyncio.run(_run(settings, undo=bool(args.undo)))
    except StreamHealthError as exc:
        print(f"streamhealth: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(redact(message))
    return 0


async def _run(settings: Settings, *, undo: bool) -> str:
    from agent.obs.client import ObsClient
    from agent.relay.point_obs import point_obs_at_relay, undo_point_obs

    obs = settings.sources.obs
    client = ObsClient(
        obs.url, obs.password.get_secret_value() if obs.password else None, timeout_s=obs.request_timeout_s
    )
    await client.connect()
    try:
        result = await (undo_point_obs(client) if undo else point_obs_at_relay(client, settings))
    finally:
        await client.close()
    return result.message

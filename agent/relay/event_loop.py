"""Which asyncio event loop the agent runs on: uvloop while the relay runs (where it is installed), else asyncio's.

The relay wakes up for every frame the encoder sends (about 80 times a second at 30 fps with audio), and
most of what a wake-up costs is the event loop's own Python (select, callbacks, transports), not the
relay's work: uvloop does that part in C. Measured on the 6 Mbit/s relay bench, it cuts the agent's CPU by
about 12 %, for about 2 MB more RSS (the module, and libuv's own read buffers). Without the relay the agent
wakes a few times a second and the memory is not worth it, so it stays on asyncio's loop; so it does on
Windows (no uvloop there) and with `relay.event_loop = "asyncio"`. Not for anything else about the loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable

from agent.settings import Settings

log = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def relay_runs(settings: Settings) -> bool:
    """The condition under which the agent starts the relay (`relay_sources`, agent/relay/source.py)."""
    return settings.relay.enabled and bool(settings.ingest.primary or settings.relay.destinations)


def loop_factory(settings: Settings) -> LoopFactory | None:
    """uvloop's loop factory if the relay runs, `relay.event_loop` allows it and uvloop is installed;
    None (asyncio's default loop) otherwise."""
    if settings.relay.event_loop != "auto" or not relay_runs(settings):
        return None
    if importlib.util.find_spec("uvloop") is None:
        log.debug("uvloop is not installed: the relay runs on asyncio's event loop")
        return None
    import uvloop

    factory: LoopFactory = uvloop.new_event_loop
    return factory

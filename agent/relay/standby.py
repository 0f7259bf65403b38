"""The relay of an agent started with no ingest: it waits for one, then runs, without the agent restarting.

`streamhealth relay point-obs` writes OBS's server and key to the settings layer (ingest_layer.py) and points
OBS at the relay. An agent that was started before that, with no `ingest.primary` and no
`relay.destinations`, had no relay to take it. This source stands in for the relay until the layer gives an
ingest: it listens on nothing (the relay's port may be another program's while the relay is not used),
publishes nothing, and costs a stat per beat; none of the relay's modules is imported. Once the layer holds an
ingest, it starts the relay as the agent would have at start-up (source.py) and runs it from then on, the
layer followed as usual (`point-obs --undo` takes the ingest away between streams).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from agent.beat import sleep_until_next_beat
from agent.relay.ingest_layer import IngestLayerWatch
from agent.settings import Settings
from agent.sources.base import SampleSink, Source
from agent.supervise import Supervisor

if TYPE_CHECKING:
    from agent.relay.source import RelaySource

LISTEN_RETRY_S: Final = 10.0  # the relay tries its port again this often while it is taken (source.py)


class StandbyRelaySource(Source):
    name: ClassVar[str] = "relay"
    waits_for_peer = True  # nothing to report before an ingest is given: not awaited at start-up

    def __init__(self, settings: Settings) -> None:
        # The relay's own staleness (source.py): a few beats, or one retry of a taken port.
        super().__init__(interval_s=settings.sampling.interval_s, timeout_s=LISTEN_RETRY_S)
        self._settings = settings
        self._layer = IngestLayerWatch(None)
        self.relay_source: RelaySource | None = None
        # Adopted by the runtime at start; the relay's own supervisor joins it once the relay runs.
        self.supervisor = Supervisor()

    async def run(self, sink: SampleSink) -> None:
        if self.relay_source is None:
            self.relay_source = self._relay_for(await self._ingest_given())
        await self.relay_source.run(sink)

    async def _ingest_given(self) -> str:
        while True:
            ingest = self._layer.poll()
            if ingest:
                return ingest
            await sleep_until_next_beat(self.interval_s)

    def _relay_for(self, ingest: str) -> RelaySource:
        from agent.relay.source import RelaySource  # the relay's modules load only now

        settings = self._settings
        given = settings.ingest.model_copy(update={"primary": ingest})
        source = RelaySource(settings.relay, given, interval_s=self.interval_s)
        self.supervisor.adopt(source.supervisor)
        return source

    async def close(self) -> None:
        if self.relay_source is not None:
            await self.relay_source.close()

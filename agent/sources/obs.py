"""The OBS source: keeps an obs-websocket v5 session to OBS Studio, polls its counters, listens to its events.

A push/poll hybrid: GetStats and GetStreamStatus are polled (faster while congestion rises), stream state
and profile changes arrive as events. Each poll becomes an `ObsSample` (see `agent.obs.derive`). When OBS is
not there the source keeps publishing a sample that says so and why ("not_connected", "auth_failed",
"kicked"), retrying with a capped backoff; a refused password is retried rarely, a kick not at all until
`request_reconnect()`. The stream key OBS holds is never kept: only the redacted server goes into the sample.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from agent.backoff import Backoff
from agent.beat import next_beat
from agent.errors import ProtocolError, SourceUnavailable
from agent.models import EncoderSettings, ObsSample, UplinkSample
from agent.models.encoder import ObsConnection
from agent.obs.backup import BackupScenePlan
from agent.obs.client import ObsClient
from agent.obs.derive import STATE_STARTED, STATE_STARTING, ObsDeriver
from agent.obs.protocol import ObsAuthenticationFailed, ObsKicked, ObsRequestFailed
from agent.redact import redact, redact_url, register_secret
from agent.settings import ObsSourceSettings
from agent.sources.base import SampleSink, Source

log = logging.getLogger(__name__)

# OBS's simple output mode always asks its encoder for a keyframe every 2 seconds.
SIMPLE_MODE_KEYFRAME_INTERVAL_S = 2.0
# Events after which OBS's stream configuration may differ: read it again.
_SETTINGS_EVENTS = frozenset({"CurrentProfileChanged", "ProfileListChanged", "CurrentSceneCollectionChanged"})


async def read_encoder_settings(client: ObsClient) -> EncoderSettings:
    """The stream configuration OBS holds: video settings, service (key dropped), bitrates, keyframe interval."""
    video = await client.request("GetVideoSettings")
    service = await client.request("GetStreamServiceSettings")
    service_settings = service.get("streamServiceSettings")
    service_settings = service_settings if isinstance(service_settings, dict) else {}
    key = service_settings.get("key")
    if isinstance(key, str):
        register_secret(key)  # so it is redacted even if it turns up in an OBS error message
    server = service_settings.get("server")
    service_name = service_settings.get("service") or service.get("streamServiceType")

    async def profile(category: str, name: str) -> str | None:
        try:
            reply = await client.request("GetProfileParameter", {"parameterCategory": category, "parameterName": name})
        except ObsRequestFailed:
            return None
        value = reply.get("parameterValue")
        if not isinstance(value, str) or not value:
            value = reply.get("defaultParameterValue")
        return value if isinstance(value, str) and value else None

    mode = await profile("Output", "Mode") or "Simple"  # OBS's default when the profile never set it
    keyframe_interval_s: float | None = None
    if mode == "Advanced":
        # Advanced mode keeps the video bitrate and keyframe interval in the encoder's own settings file,
        # which obs-websocket does not expose; only the audio track bitrate is a profile parameter.
        track = await profile("AdvOut", "TrackIndex") or "1"
        video_bitrate = None
        audio_bitrate = await profile("AdvOut", f"Track{track}Bitrate")
        encoder = await profile("AdvOut", "Encoder")
    else:
        video_bitrate = await profile("SimpleOutput", "VBitrate")
        audio_bitrate = await profile("SimpleOutput", "ABitrate")
        encoder = await profile("SimpleOutput", "StreamEncoder")
        keyframe_interval_s = SIMPLE_MODE_KEYFRAME_INTERVAL_S
    numerator, denominator = video.get("fpsNumerator"), video.get("fpsDenominator")
    fps = (
        round(numerator / denominator, 3)
        if isinstance(numerator, int | float) and isinstance(denominator, int | float) and denominator
        else None
    )
    return EncoderSettings(
        video_bitrate_kbps=_as_int(video_bitrate),
        audio_bitrate_kbps=_as_int(audio_bitrate),
        width=_as_int(video.get("outputWidth")),
        height=_as_int(video.get("outputHeight")),
        fps=fps,
        keyframe_interval_s=keyframe_interval_s,
        video_encoder=encoder,
        output_mode=mode,
        service=redact(str(service_name)) if service_name else None,
        server=redact_url(server) if isinstance(server, str) and server else None,
    )


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


class ObsSource(Source):
    name = "obs"

    def __init__(self, settings: ObsSourceSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval_s=settings.poll_interval_s, timeout_s=settings.request_timeout_s)
        self.settings = settings
        self.clock = clock
        self.deriver = ObsDeriver(settings.window_s)
        self.plan = BackupScenePlan(settings.backup_scene)
        self.encoder_settings: EncoderSettings | None = None
        self.program_scene: str | None = None
        self.connection: ObsConnection = "connecting"
        self.connection_detail: str | None = None
        self.obs_websocket_version: str | None = None
        self.sessions = 0
        self._reconnect_requested: asyncio.Event | None = None
        self._client: ObsClient | None = None
        self._last_congestion: float | None = None
        # The uplink source's latest reading (wired by build_sources): the backup plan's kernel view.
        self.uplink: Callable[[], UplinkSample | None] = lambda: None
        # Called while OBS streams (wired by build_sources): the uplink source looks for the connection now.
        self.on_streaming: Callable[[], None] = lambda: None

    def request_reconnect(self) -> None:
        """Connect again now (after a kick or a refused password the source otherwise waits)."""
        if self._reconnect_requested is not None:
            self._reconnect_requested.set()

    async def run(self, sink: SampleSink) -> None:
        self._reconnect_requested = asyncio.Event()
        backoff = Backoff(1.0, self.settings.max_backoff_s)
        password = self.settings.password.get_secret_value() if self.settings.password else None
        while True:
            self._reconnect_requested.clear()
            client = ObsClient(self.settings.url, password, timeout_s=self.settings.request_timeout_s)
            self._client = client
            if backoff.failures == 0:
                self._set_connection("connecting", None, sink)
            delay: float | None
            try:
                await client.connect()
                backoff.reset()
                self.sessions += 1
                self.obs_websocket_version = client.protocol.obs_websocket_version
                await self._session(client, sink)
            except ObsAuthenticationFailed as exc:
                backoff.next_s()  # counted, so the next try is not announced as "connecting"
                self._set_connection("auth_failed", str(exc), sink)
                delay = self.settings.auth_retry_s
            except ObsKicked as exc:
                backoff.next_s()
                self._set_connection("kicked", str(exc), sink)
                delay = None
            except (SourceUnavailable, ProtocolError) as exc:
                delay = backoff.next_s()
                self._set_connection("not_connected", f"{exc}; retrying in {delay:.1f} s", sink)
            finally:
                self._client = None
                await client.close()
            await self._wait_disconnected(sink, delay)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    # --- connected --------------------------------------------------------------------------------

    async def _session(self, client: ObsClient, sink: SampleSink) -> None:
        self._set_connection("connected", None, None)
        await self._refresh_settings(client)
        if self.plan.enabled:
            await self._read_program_scene(client)
        reload_settings = False
        while True:
            started = self.clock()
            if reload_settings:
                reload_settings = False
                await self._refresh_settings(client)
            stats: dict[str, Any] | None
            status: dict[str, Any] | None
            try:
                stats, status = await asyncio.gather(client.request("GetStats"), client.request("GetStreamStatus"))
            except ObsRequestFailed as exc:  # OBS is there but refused: report, keep the session
                sink.report_failure(self.name, str(exc))
                stats = status = None
            if stats is not None and status is not None:
                sample = self.deriver.update(self.clock(), stats, status, self.encoder_settings)
                sample = await self._apply_backup_plan(client, sample)
                sink.publish(self.name, sample.model_copy(update=self._identity()))
                if sample.streaming:
                    self.on_streaming()
                interval = self._next_interval(sample)
            else:
                interval = self.settings.poll_interval_s
            deadline = next_beat(started, interval)  # with the tick and the other sources
            while (remaining := deadline - self.clock()) > 0:
                event = await client.next_event(remaining)
                if event is None:
                    break
                if event.event_type == "StreamStateChanged":
                    state = str(event.data.get("outputState", ""))
                    self.deriver.on_stream_state(state, bool(event.data.get("outputActive")))
                    log.info("OBS stream state: %s", state.removeprefix("OBS_WEBSOCKET_OUTPUT_").lower())
                    if state in (STATE_STARTING, STATE_STARTED):
                        reload_settings = True
                        deadline = self.clock()  # poll now: the stream state just changed
                elif event.event_type in _SETTINGS_EVENTS:
                    reload_settings = True
                elif event.event_type == "CurrentProgramSceneChanged":
                    scene = event.data.get("sceneName")
                    self.program_scene = scene if isinstance(scene, str) else None

    def _next_interval(self, sample: ObsSample) -> float:
        congestion = sample.output_congestion_ratio
        rising = congestion is not None and self._last_congestion is not None and congestion > self._last_congestion
        self._last_congestion = congestion
        fast = (
            sample.reconnecting
            or rising
            or (congestion is not None and congestion >= self.settings.fast_poll_congestion_ratio)
        )
        return self.settings.fast_poll_interval_s if fast else self.settings.poll_interval_s

    async def _refresh_settings(self, client: ObsClient) -> None:
        try:
            self.encoder_settings = await read_encoder_settings(client)
        except ObsRequestFailed as exc:
            log.warning("could not read OBS's stream configuration: %s", exc)

    async def _read_program_scene(self, client: ObsClient) -> None:
        try:
            reply = await client.request("GetCurrentProgramScene")
        except ObsRequestFailed as exc:
            log.warning("backup plan: cannot read OBS's program scene: %s", exc)
            return
        scene = reply.get("currentProgramSceneName") or reply.get("sceneName")
        self.program_scene = scene if isinstance(scene, str) else None

    async def _apply_backup_plan(self, client: ObsClient, sample: ObsSample) -> ObsSample:
        if not self.plan.enabled:
            return sample
        switch = self.plan.update(self.clock(), sample, self.program_scene, self.uplink())
        if switch is not None:
            try:
                await client.request("SetCurrentProgramScene", {"sceneName": switch.scene})
                self.program_scene = switch.scene
                log.warning("backup plan: %s", switch.reason)
            except ObsRequestFailed as exc:
                self.plan.reason = f"could not switch to {switch.scene!r}: {exc}"
                log.warning("backup plan: %s", self.plan.reason)
        return sample.model_copy(
            update={
                "program_scene": self.program_scene,
                "backup_scene_active": self.plan.active,
                "backup_scene_reason": self.plan.reason,
            }
        )

    # --- not connected ----------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        return {"obs_websocket_version": self.obs_websocket_version}

    def _set_connection(self, state: ObsConnection, detail: str | None, sink: SampleSink | None) -> None:
        detail = redact(detail) if detail else None
        if (state, detail) != (self.connection, self.connection_detail):
            if state in ("auth_failed", "kicked"):
                log.warning("OBS: %s", detail)
            elif state == "not_connected" and self.connection != "not_connected":
                log.warning("OBS not connected: %s", detail)
            elif state == "connected":
                log.info("OBS connected at %s (obs-websocket %s)", self.settings.url, self.obs_websocket_version)
        self.connection, self.connection_detail = state, detail
        if sink is not None:
            self._publish_state(sink)

    def _publish_state(self, sink: SampleSink) -> None:
        sink.publish(
            self.name,
            ObsSample(
                connection=self.connection,
                connection_detail=self.connection_detail,
                settings=self.encoder_settings,  # what we last read stays useful
                **self._identity(),
            ),
        )

    async def _wait_disconnected(self, sink: SampleSink, delay_s: float | None) -> None:
        """Wait `delay_s` (None: until asked), saying that OBS is not connected twice per staleness window:
        often enough never to look stale, not every second (each saying costs a sample and its history)."""
        assert self._reconnect_requested is not None
        poll_s = max(self.settings.poll_interval_s, self.stale_after_s / 2)
        # On the beat (agent/beat.py): the retry and each "not connected" wake up with the other loops.
        deadline = None if delay_s is None else math.ceil((self.clock() + delay_s) / poll_s) * poll_s
        while deadline is None or self.clock() < deadline:
            wake_at = next_beat(self.clock(), poll_s)
            step = (wake_at if deadline is None else min(wake_at, deadline)) - self.clock()
            try:
                async with asyncio.timeout(max(0.0, step)):
                    await self._reconnect_requested.wait()
                log.info("OBS: reconnecting as asked")
                return
            except TimeoutError:
                self._publish_state(sink)

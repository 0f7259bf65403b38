"""The sources: one module per thing we measure. `build_sources` is the one place that lists them.

The relay is a source too, but it registers itself (agent/relay/source.py, `relay_sources`, added by the
runtime): the measuring sources never import the relay, which sits above them."""

from __future__ import annotations

from agent.settings import Settings
from agent.sources.base import PollingSource, SampleSink, Source


def build_sources(settings: Settings) -> list[Source]:
    """The sources enabled in `settings`, ready to run. Imports are local so a disabled source costs nothing."""
    interval_s, timeout_s = settings.sampling.interval_s, settings.sampling.source_timeout_s
    sources: list[Source] = []
    obs_source = None
    system_source = None
    if settings.sources.system.enabled:
        from agent.sources.system import SystemSource

        system_source = SystemSource(settings.sources.system, interval_s=interval_s, timeout_s=timeout_s)
        sources.append(system_source)
    if settings.sources.network.enabled:
        from agent.sources.network import NetworkSource

        sources.append(NetworkSource(settings.sources.network, settings.ingest, timeout_s=timeout_s))
    if settings.sources.obs.enabled:
        from agent.sources.obs import ObsSource

        obs_source = ObsSource(settings.sources.obs)
        sources.append(obs_source)
    ffmpeg_source = None
    if settings.sources.ffmpeg.enabled:
        from agent.sources.ffmpeg import FfmpegSource

        ffmpeg_source = FfmpegSource(settings.sources.ffmpeg)
        sources.append(ffmpeg_source)
    if settings.sources.uplink.enabled:
        from agent.sources.uplink import UplinkSource

        obs_settings = (lambda: obs_source.encoder_settings) if obs_source is not None else (lambda: None)
        uplink_source = UplinkSource(
            settings.sources.uplink,
            settings.ingest,
            settings.stream,
            obs_settings=obs_settings,
            encoder_running=system_source.encoder_running if system_source is not None else (lambda: None),
        )
        sources.append(uplink_source)
        if obs_source is not None:
            obs_source.uplink = lambda: uplink_source.latest
            obs_source.on_streaming = uplink_source.search_now
        if ffmpeg_source is not None:
            ffmpeg_source.on_progress = uplink_source.search_now
    return sources


__all__ = ["PollingSource", "SampleSink", "Source", "build_sources"]

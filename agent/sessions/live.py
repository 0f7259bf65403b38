"""Is the stream live right now? Read from one health snapshot, so the agent and a log reader agree.

Each origin (OBS, ffmpeg progress, later the relay) has an indicator: a pure function of the snapshot.
The relay adds its own with `register_live_indicator("relay", ...)` reading a field of its sample (e.g.
"a publisher is connected"); because indicators read only the snapshot, a session rebuilt from the log
sees exactly what the agent saw.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.models import HealthSnapshot, LiveOrigin

LiveIndicator = Callable[[HealthSnapshot], bool]
# ffmpeg's bitrate is its output size over media time: its first report (1 ms of media, the headers and a
# keyframe) says tens of Mb/s. It means something once a second of media is out.
FFMPEG_BITRATE_AFTER_S = 1.0


def obs_live(snapshot: HealthSnapshot) -> bool:
    """OBS's stream output is active and not reconnecting (a reconnect is a gap in the same session)."""
    obs = snapshot.obs
    return obs is not None and obs.connection == "connected" and obs.streaming and not obs.reconnecting


def ffmpeg_live(snapshot: HealthSnapshot) -> bool:
    """ffmpeg reports progress (its source is fresh) and has not said `progress=end`."""
    ffmpeg = snapshot.ffmpeg
    status = snapshot.sources.get("ffmpeg")
    return ffmpeg is not None and not ffmpeg.ended and status is not None and status.state == "ok"


def relay_live(snapshot: HealthSnapshot) -> bool:
    """An encoder is publishing to the agent's relay (agent/relay/), or the relay holds the broadcast with
    its slate while the encoder is lost: to the viewers the stream goes on."""
    relay = snapshot.relay
    return relay is not None and (relay.publishing or relay.holding)


LIVE_INDICATORS: dict[LiveOrigin, LiveIndicator] = {"obs": obs_live, "ffmpeg": ffmpeg_live, "relay": relay_live}


def register_live_indicator(origin: LiveOrigin, indicator: LiveIndicator) -> None:
    """The hook for another way of going live (the relay: a publisher connected)."""
    LIVE_INDICATORS[origin] = indicator


def live_origins(snapshot: HealthSnapshot) -> list[LiveOrigin]:
    """The origins that say the stream is live in this snapshot, in a stable order."""
    return [origin for origin, indicator in LIVE_INDICATORS.items() if indicator(snapshot)]


def output_bitrate_bps(snapshot: HealthSnapshot) -> float | None:
    """What actually leaves the encoder: OBS's output when it streams, else ffmpeg's progress bitrate, else
    (any encoder publishing to the agent's relay, which reports nothing itself) the relay's media bit rate
    toward the ingest."""
    if snapshot.obs is not None and snapshot.obs.streaming and snapshot.obs.output_bitrate_bps is not None:
        return snapshot.obs.output_bitrate_bps
    ffmpeg = snapshot.ffmpeg
    if ffmpeg is not None and not ffmpeg.ended and (ffmpeg.out_time_s or 0.0) >= FFMPEG_BITRATE_AFTER_S:
        return ffmpeg.bitrate_bps
    relay = snapshot.relay
    if relay is not None and relay.publishing and relay.egress_bps is not None:
        return relay.egress_bps
    return None


def target_bitrate_bps(snapshot: HealthSnapshot, configured_kbps: tuple[int | None, int | None]) -> float | None:
    """Video + audio bitrate the encoder is set to: OBS's own settings, else `[stream]` in the config."""
    obs_settings = snapshot.obs.settings if snapshot.obs is not None else None
    video, audio = configured_kbps
    if obs_settings is not None and obs_settings.video_bitrate_kbps:
        video, audio = obs_settings.video_bitrate_kbps, obs_settings.audio_bitrate_kbps or audio
    if not video:
        return None
    return float((video + (audio or 0)) * 1000)

"""What a preflight saw (`Observation`) and the helpers every check uses to read it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.models import BandwidthResult, CheckStatus, EncoderSettings, HealthSnapshot, PreflightCheck, UplinkSample
from agent.platforms import PlatformPreset, VideoProfile
from agent.rules.derived import StreamTarget
from agent.rules.playbook import Playbook


@dataclass
class Observation:
    snapshots: list[HealthSnapshot]
    preset: PlatformPreset
    playbook: Playbook
    target: StreamTarget = field(default_factory=StreamTarget)
    bandwidth: BandwidthResult | None = None
    bandwidth_skipped: str | None = None
    encoder_sources: tuple[str, ...] = ()
    # A stream was already live: the upload is judged from its own connection (sources.uplink), and no
    # bandwidth test runs beside it (it would compete with the stream and hurt it).
    live_uplink: bool = False

    def uplink_readings(self) -> list[UplinkSample]:
        return [s.uplink for s in self.snapshots if s.uplink is not None and s.uplink.state in ("ok", "congested")]

    def live_link_rate_bps(self) -> float | None:
        """What the live stream's congested connection carried, when it was congested during the window."""
        congested = [r for r in self.uplink_readings() if r.congested and r.link_rate_bps]
        return congested[-1].link_rate_bps if congested else None

    @property
    def last(self) -> HealthSnapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    def encoder_settings(self) -> EncoderSettings:
        """What the encoder is set to: OBS's own settings, else the stream settings."""
        for snapshot in reversed(self.snapshots):
            obs = snapshot.obs
            if obs is not None and obs.settings is not None and obs.connection == "connected":
                return obs.settings
        return self.target.encoder_settings()

    def profile(self) -> VideoProfile:
        settings = self.encoder_settings()
        return self.preset.profile_for(settings.width, settings.height, settings.fps)

    def planned_video_kbps(self) -> int:
        """The video bitrate the stream will use: the encoder's, else the preset's recommendation."""
        return self.encoder_settings().video_bitrate_kbps or self.profile().recommended_video_kbps

    def audio_kbps(self) -> int:
        return self.encoder_settings().audio_bitrate_kbps or self.preset.audio.recommended_kbps


def make_check(
    name: str, status: CheckStatus, message: str, value: str | None = None, suggestion: str | None = None
) -> PreflightCheck:
    return PreflightCheck(name=name, status=status, value=value, message=message, suggestion=suggestion)


def values_of(observation: Observation, read: Callable[[HealthSnapshot], float | None]) -> list[float]:
    values = []
    for snapshot in observation.snapshots:
        value = read(snapshot)
        if value is not None and math.isfinite(value):
            values.append(value)
    return values


def stream_is_live(snapshot: HealthSnapshot) -> bool:
    """The kernel is reading an encoder's connection to its ingest right now."""
    return snapshot.uplink is not None and snapshot.uplink.state in ("ok", "congested")

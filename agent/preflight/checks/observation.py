"""What a preflight saw (`Observation`) and the helpers every check uses to read it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.models import BandwidthResult, CheckStatus, EncoderSettings, HealthSnapshot, PreflightCheck
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

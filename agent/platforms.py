"""Platform presets: what TikTok, Twitch, YouTube (or a custom ingest) accept and recommend.

The numbers live in `configs/platforms/<name>.toml`, each citing where they come from; this module
only loads and validates them, and answers "which profile fits this resolution and frame rate". A bad
preset file is a `ConfigError` naming the file and the field, like any other configuration mistake.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent import paths
from agent.errors import ConfigError

PLATFORM_NAMES = ("tiktok", "twitch", "youtube", "custom")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PresetIngest(_Strict):
    role: Literal["primary", "backup", "extra"]
    name: str
    url: str = Field(description="rtmp:// or rtmps:// server URL, without a stream key.")

    @model_validator(mode="after")
    def _check_url(self) -> PresetIngest:
        if not self.url.lower().startswith(("rtmp://", "rtmps://")):
            raise ValueError(f"ingest {self.name!r}: url must start with rtmp:// or rtmps://")
        return self


class VideoProfile(_Strict):
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: float = Field(gt=0, le=240)
    min_video_kbps: int = Field(gt=0)
    recommended_video_kbps: int = Field(gt=0)
    max_video_kbps: int = Field(gt=0)

    @model_validator(mode="after")
    def _check_range(self) -> VideoProfile:
        if not self.min_video_kbps <= self.recommended_video_kbps <= self.max_video_kbps:
            raise ValueError("needs min_video_kbps <= recommended_video_kbps <= max_video_kbps")
        return self

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}@{self.fps:g}"


class AudioSpec(_Strict):
    codecs: list[str] = Field(min_length=1)
    recommended_kbps: int = Field(gt=0)
    max_kbps: int = Field(gt=0)
    sample_rates_hz: list[int] = Field(min_length=1)
    channels: list[int] = Field(default_factory=lambda: [2])


class PlatformPreset(_Strict):
    name: str
    display_name: str
    stream_key_note: str = ""
    ingests: list[PresetIngest] = Field(default_factory=list)
    video_codecs: list[str] = Field(min_length=1)
    rate_control: str | None = None
    keyframe_interval_s: float = Field(gt=0, le=20, description="What the platform asks for.")
    keyframe_interval_max_s: float = Field(gt=0, le=20, description="Longer than this is a problem.")
    keyframe_interval_exact: bool = Field(False, description="True when only exactly keyframe_interval_s is accepted.")
    default_profile: str = Field(description="Label of the profile to recommend first, e.g. 1280x720@30.")
    profiles: list[VideoProfile] = Field(min_length=1)
    audio: AudioSpec

    @model_validator(mode="after")
    def _check(self) -> PlatformPreset:
        labels = [profile.label for profile in self.profiles]
        if self.default_profile not in labels:
            raise ValueError(
                f"default_profile {self.default_profile!r} is not one of the profiles ({', '.join(labels)})"
            )
        if self.keyframe_interval_max_s < self.keyframe_interval_s:
            raise ValueError("keyframe_interval_max_s must be at least keyframe_interval_s")
        return self

    @property
    def default(self) -> VideoProfile:
        return next(profile for profile in self.profiles if profile.label == self.default_profile)

    @property
    def primary_ingests(self) -> list[PresetIngest]:
        return [ingest for ingest in self.ingests if ingest.role == "primary"]

    @property
    def backup_ingests(self) -> list[PresetIngest]:
        return [ingest for ingest in self.ingests if ingest.role == "backup"]

    def profile_for(self, width: int | None, height: int | None, fps: float | None) -> VideoProfile:
        """The profile for this output: same resolution (either orientation) and nearest frame rate;
        otherwise the one nearest in pixel count. Unknown output: the default profile."""
        if width is None or height is None:
            if fps is None:
                return self.default
            width, height = self.default.width, self.default.height
        pixels = width * height
        same = [p for p in self.profiles if {p.width, p.height} == {width, height}]
        pool = same or sorted(self.profiles, key=lambda p: abs(p.width * p.height - pixels))[:1]
        if not same:
            nearest_pixels = pool[0].width * pool[0].height
            pool = [p for p in self.profiles if p.width * p.height == nearest_pixels]
        if fps is None and self.default in pool:
            return self.default
        target_fps = fps if fps is not None else pool[0].fps
        return min(pool, key=lambda p: abs(p.fps - target_fps))

    def keyframe_problem(self, interval_s: float | None) -> str | None:
        """Why this keyframe interval does not suit the platform, or None when it does."""
        if interval_s is None or interval_s <= 0:
            return (
                f"the keyframe interval is automatic; {self.display_name} needs {self.keyframe_interval_s:g} s "
                "(automatic usually means far longer)"
            )
        if self.keyframe_interval_exact and abs(interval_s - self.keyframe_interval_s) > 0.01:
            return f"the keyframe interval is {interval_s:g} s; {self.display_name} needs exactly {self.keyframe_interval_s:g} s"
        if interval_s > self.keyframe_interval_max_s + 0.01:
            return (
                f"the keyframe interval is {interval_s:g} s; {self.display_name} needs at most "
                f"{self.keyframe_interval_max_s:g} s ({self.keyframe_interval_s:g} s recommended)"
            )
        return None


def preset_file(name: str, directory: Path | None = None) -> Path:
    return (directory or paths.shipped_configs_dir() / "platforms") / f"{name}.toml"


def load_preset_file(path: Path) -> PlatformPreset:
    """Read and validate one preset file; any problem is a `ConfigError` naming the file and the field."""
    from agent.settings import read_toml  # settings imports this module's names lazily too

    data = read_toml(path)
    try:
        return PlatformPreset.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(top level)"
            reason = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"  {path}: {field}: {reason}")
        raise ConfigError("invalid platform preset:\n" + "\n".join(problems), file=str(path)) from None


@functools.cache
def load_preset(name: str) -> PlatformPreset:
    """The shipped preset for a platform name (cached: the files do not change while we run)."""
    if name not in PLATFORM_NAMES:
        raise ConfigError(f"unknown platform {name!r}: use one of {', '.join(PLATFORM_NAMES)}")
    return load_preset_file(preset_file(name))

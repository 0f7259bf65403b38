"""The playbook: backup plans with numbers. Maps alert kinds to ordered suggestions, each filled in from
what was measured ("Lower the video bitrate to 700 kbps: only 1.15 Mbit/s is getting through").

The text lives in `configs/playbook.toml`; this module computes the figures the text may use
(`PlanContext`) and renders the entries whose figures are known. It decides nothing on its own:
the engine asks it for the suggestions of an alert.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent import paths
from agent.errors import ConfigError
from agent.models import HealthSnapshot, Suggestion
from agent.net.uplink_tracker import HEADROOM_RATIO as UPLINK_HEADROOM_RATIO
from agent.platforms import PlatformPreset
from agent.rules.templates import render
from agent.settings import read_toml

# The figures an entry's text may use. Each is None when it cannot be computed right now.
CONTEXT_KEYS: dict[str, str] = {
    "recommended_video_kbps": "Video bitrate that fits what gets through, with the headroom factor and audio taken off.",
    "achieved_kbps": "Throughput actually reaching the ingest (kbit/s).",
    "achieved_mbps": "The same in Mbit/s.",
    "configured_kbps": "Video + audio bitrate the encoder is set to (kbit/s).",
    "configured_video_kbps": "Video bitrate the encoder is set to.",
    "audio_kbps": "Audio bitrate.",
    "headroom_factor": "The playbook's live headroom factor (1.25: send at most 80 % of what the link carries).",
    "top_processes": "The busiest processes by name, other than the encoder, with their CPU use.",
    "encoder_name": "The encoder process name.",
    "interface": "The network interface carrying the uplink.",
    "wifi_signal_dbm": "Wi-Fi signal strength.",
    "upload_users": "Other processes sending on the uplink.",
    "backup_ingest": "The first backup ingest (host:port, no key).",
    "brb_scene": "The OBS scene switched to when the stream is in trouble (sources.obs).",
    "battery_percent": "Battery charge.",
    "disk_free_gb": "Free space where recordings go.",
    "disk_path": "Where recordings go.",
    "platform": "The platform's display name.",
    "preset_profile": "The preset's profile for this output, e.g. 1280x720@30.",
    "preset_min_kbps": "The preset's minimum video bitrate for that profile.",
    "preset_recommended_kbps": "The preset's recommended video bitrate for that profile.",
    "preset_keyframe_interval_s": "The keyframe interval the platform needs.",
    "resolution": "The output resolution.",
    "lower_resolution": "A resolution one step down that suits the measured uplink.",
}


class PlaybookEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    why: str
    requires: list[str] = Field(default_factory=list, description="Figures that must be known to use `text`.")
    fallback: str | None = Field(None, description="Text used when a required figure is unknown; else skipped.")
    fallback_why: str | None = Field(None, description="`why` when a figure `why` uses is unknown; else skipped.")
    automatic: bool = False
    automatic_when: str | None = Field(None, description="A figure whose presence makes the agent do it itself.")

    @model_validator(mode="after")
    def _check(self) -> PlaybookEntry:
        for template in (self.text, self.why, self.fallback or "", self.fallback_why or ""):
            for _, field, _, _ in string.Formatter().parse(template):
                if field is not None and field.split(".")[0] not in CONTEXT_KEYS:
                    raise ValueError(f"unknown figure {{{field}}} (known: {', '.join(sorted(CONTEXT_KEYS))})")
        for key in [*self.requires, *([self.automatic_when] if self.automatic_when else [])]:
            if key not in CONTEXT_KEYS:
                raise ValueError(f"unknown figure {key!r} in requires / automatic_when")
        return self


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Planning from a bandwidth test (preflight): a short burst measured before the stream, so a wide margin.
    headroom_factor: float = Field(1.5, ge=1.18, le=4.0)
    # Lowering the bitrate from what the link was measured to carry during the stream: at least 1.18, so the
    # suggested bitrate leaves audio and 15 % of that free (1 / 0.85); 1.25 is the uplink tracker's own margin.
    live_headroom_factor: float = Field(1.25, ge=1.18, le=4.0)
    round_to_kbps: int = Field(50, ge=1)
    min_video_kbps: int = Field(300, ge=50)
    plans: dict[str, list[str]] = Field(default_factory=dict)
    entries: dict[str, PlaybookEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Playbook:
        for kind, names in self.plans.items():
            for name in names:
                if name not in self.entries:
                    raise ValueError(f"plans.{kind}: no entry named {name!r}")
        return self

    def suggestions(self, kind: str, context: PlanContext, names: list[str] | None = None) -> list[Suggestion]:
        """The plan for an alert kind (or the given entry names), filled in from `context`. An entry whose
        figures are not known uses its fallback text, or is left out: a suggestion never shows a hole."""
        values = context.values
        result: list[Suggestion] = []
        for name in self.plans.get(kind, []) if names is None else names:
            entry = self.entries[name]
            missing = [key for key in entry.requires if values.get(key) in (None, "", [])]
            text = render(entry.text, values) if not missing else None
            if text is None and entry.fallback is not None:
                text = render(entry.fallback, values)
            why = render(entry.why, values)
            if why is None and entry.fallback_why is not None:
                why = render(entry.fallback_why, values)
            if text is None or why is None:
                continue
            automatic = entry.automatic or (entry.automatic_when is not None and bool(values.get(entry.automatic_when)))
            result.append(Suggestion(text=text, why=why, automatic=automatic))
        return result


def shipped_playbook_file() -> Path:
    return paths.shipped_configs_dir() / "playbook.toml"


def load_playbook(user_file: Path | None = None) -> Playbook:
    """The shipped playbook, with the user's entries and plans merged over it; validated."""
    shipped = shipped_playbook_file()
    data = read_toml(shipped)
    origin = str(shipped)
    if user_file is not None:
        user = read_toml(user_file)
        origin = f"{shipped} + {user_file}"
        for key, value in user.items():
            if key in ("entries", "plans") and isinstance(value, dict):
                data[key] = {**data.get(key, {}), **value}
            else:
                data[key] = value
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            reason = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
            reasons.append(f"  {origin}: {field}: {reason}")
        raise ConfigError("invalid playbook:\n" + "\n".join(reasons), file=origin) from None


# --- the figures ----------------------------------------------------------------------------------


def recommended_video_kbps(
    achieved_bps: float, audio_kbps: float, playbook: Playbook, headroom_factor: float | None = None
) -> int:
    """Video bitrate that leaves `headroom_factor` (default: the playbook's) of margin on what actually got
    through, audio included, rounded down to a round figure; never below the playbook's floor."""
    usable_kbps = achieved_bps / 1000 / (headroom_factor or playbook.headroom_factor) - audio_kbps
    rounded = math.floor(usable_kbps / playbook.round_to_kbps) * playbook.round_to_kbps
    return max(playbook.min_video_kbps, int(rounded))


_RESOLUTION_STEPS = ((1920, 1080), (1280, 720), (854, 480), (640, 360))


@dataclass
class PlanContext:
    values: dict[str, Any]

    @classmethod
    def build(
        cls,
        snapshot: HealthSnapshot,
        derived: dict[str, float],
        playbook: Playbook,
        preset: PlatformPreset,
        *,
        brb_scene: str | None = None,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
    ) -> PlanContext:
        values: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS)
        values["headroom_factor"] = playbook.live_headroom_factor
        audio = derived.get("audio_kbps", float(preset.audio.recommended_kbps))
        values["audio_kbps"] = int(audio)
        configured = derived.get("configured_bitrate_bps")
        if configured:
            values["configured_kbps"] = round(configured / 1000)
        if "configured_video_kbps" in derived:
            values["configured_video_kbps"] = int(derived["configured_video_kbps"])
        # What the link carried, from the one capacity figure the headroom rule and the TUI read too; only a
        # measurement (never a lower bound) gives a bitrate to lower to, and only one below the current one.
        capacity = snapshot.upload_capacity
        if capacity is not None and not capacity.lower_bound:
            values["achieved_kbps"] = round(capacity.bps / 1000)
            values["achieved_mbps"] = capacity.bps / 1e6
            recommended = recommended_video_kbps(capacity.bps, audio, playbook, playbook.live_headroom_factor)
            if recommended < derived.get("configured_video_kbps", math.inf):
                values["recommended_video_kbps"] = recommended
        uplink = snapshot.uplink
        if uplink is not None and uplink.congested and uplink.link_rate_bps and uplink.suggested_video_bitrate_kbps:
            # The kernel's view of the congested link: the uplink tracker's own suggestion, which holds still
            # while the link does (agent/net/uplink_tracker.py), with its own margin.
            values["achieved_kbps"] = round(uplink.link_rate_bps / 1000)
            values["achieved_mbps"] = uplink.link_rate_bps / 1e6
            values["recommended_video_kbps"] = uplink.suggested_video_bitrate_kbps
            values["headroom_factor"] = round(1 / UPLINK_HEADROOM_RATIO, 2)

        system, network = snapshot.system, snapshot.network
        if system is not None:
            encoder_pid = system.encoder_process.pid if system.encoder_process else None
            busy = [p for p in system.top_processes if p.pid != encoder_pid and p.cpu_core_ratio >= 0.05]
            if busy:
                values["top_processes"] = ", ".join(f"{p.name} ({p.cpu_core_ratio:.0%} of a core)" for p in busy[:3])
            if system.encoder_process:
                values["encoder_name"] = system.encoder_process.name
            values["interface"] = system.default_route_interface
            if system.battery is not None:
                values["battery_percent"] = round(system.battery.charge_ratio * 100)
            if system.disk is not None:
                values["disk_free_gb"] = round(system.disk.free_bytes / 1e9, 1)
                values["disk_path"] = system.disk.path
        if network is not None:
            values["interface"] = network.link.interface or values["interface"]
            values["wifi_signal_dbm"] = network.link.wifi_signal_dbm
            if network.upload_users:
                values["upload_users"] = ", ".join(user.name for user in network.upload_users[:3])
        if snapshot.agent.ingest_backups:
            parts = urlsplit(snapshot.agent.ingest_backups[0])
            values["backup_ingest"] = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'rtmps' else 1935)}"
        values["brb_scene"] = brb_scene
        values["platform"] = preset.display_name
        width, height = resolution or (None, None)
        profile = preset.profile_for(width, height, fps)
        values["preset_profile"] = profile.label
        values["preset_min_kbps"] = profile.min_video_kbps
        values["preset_recommended_kbps"] = profile.recommended_video_kbps
        values["preset_keyframe_interval_s"] = preset.keyframe_interval_s
        if width and height:
            values["resolution"] = f"{width}x{height}"
            portrait = height > width
            long_side = max(width, height)
            for step_w, step_h in _RESOLUTION_STEPS:
                if step_w < long_side:
                    values["lower_resolution"] = f"{step_h}x{step_w}" if portrait else f"{step_w}x{step_h}"
                    break
        return cls(values)

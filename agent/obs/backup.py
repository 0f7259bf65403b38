"""The backup plan: switch OBS to a "be right back" / low-bitrate scene while the uplink cannot carry the
stream, and back when it recovers (the idea of NOALBS, driven by our own measurements).

`BackupScenePlan` decides; it does no I/O. The OBS source feeds it every sample and performs the switch it
returns with SetCurrentProgramScene. Hysteresis (enter and exit thresholds), durations and a minimum hold
time keep it from flapping; if the streamer picks another scene by hand while it is active, it stands down.
Off by default: it changes what viewers see.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.models import ObsSample
from agent.settings import ObsBackupSceneSettings


@dataclass(frozen=True)
class SceneSwitch:
    scene: str
    to_backup: bool
    reason: str


class BackupScenePlan:
    def __init__(self, settings: ObsBackupSceneSettings) -> None:
        self.settings = settings
        self.active = False
        self.return_scene: str | None = None
        self.reason: str | None = None
        self._switched_at = 0.0
        self._bad_since: float | None = None
        self._good_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and bool(self.settings.scene)

    def _trouble(self, sample: ObsSample) -> str | None:
        """Why the stream is in trouble now, or None."""
        if not sample.streaming:
            return None
        if sample.reconnecting and self.settings.on_reconnecting:
            return "OBS lost the connection to the ingest and is reconnecting"
        congestion = sample.output_congestion_ratio
        if congestion is not None and congestion >= self.settings.congestion_enter_ratio:
            return f"output congestion {congestion:.2f} (>= {self.settings.congestion_enter_ratio:g})"
        return None

    def _recovered(self, sample: ObsSample) -> bool:
        if not sample.streaming:
            return True  # the stream ended: put the normal scene back for next time
        if sample.reconnecting:
            return False
        congestion = sample.output_congestion_ratio
        return congestion is None or congestion <= self.settings.congestion_exit_ratio

    def update(self, now: float, sample: ObsSample, program_scene: str | None) -> SceneSwitch | None:
        """Feed one sample (and the scene on air); returns the switch to make, if any."""
        if not self.enabled or sample.connection != "connected":
            return None
        backup = self.settings.scene
        assert backup is not None
        if not self.active:
            trouble = self._trouble(sample)
            if trouble is None:
                self._bad_since = None
                return None
            if self._bad_since is None:
                self._bad_since = now
            if now - self._bad_since < self.settings.enter_after_s or program_scene == backup:
                return None
            self.active, self._switched_at, self._bad_since, self._good_since = True, now, None, None
            self.return_scene = program_scene
            self.reason = f"switched to {backup!r}: {trouble} for {self.settings.enter_after_s:g} s"
            return SceneSwitch(backup, True, self.reason)

        if program_scene is not None and program_scene != backup:
            self._stand_down("the streamer picked another scene by hand; backup plan stood down")
            return None
        if not self._recovered(sample):
            self._good_since = None
            return None
        if self._good_since is None:
            self._good_since = now
        held = now - self._switched_at >= self.settings.min_hold_s
        if now - self._good_since < self.settings.exit_after_s or not held:
            return None
        target = self.return_scene or self.settings.return_scene
        self._stand_down(None)
        if target is None or target == backup:
            self.reason = "recovered, but the scene to return to is unknown: set sources.obs.backup_scene.return_scene"
            return None
        return SceneSwitch(target, False, f"back to {target!r}: the stream recovered")

    def _stand_down(self, reason: str | None) -> None:
        self.active, self._good_since, self._bad_since = False, None, None
        self.return_scene = None
        self.reason = reason

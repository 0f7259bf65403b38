"""The backup plan: switch OBS to a "be right back" / low-bitrate scene while the uplink cannot carry the
stream, and back when it recovers (the idea of NOALBS, driven by our own measurements).

`BackupScenePlan` decides; it does no I/O. The OBS source feeds it every sample (and the uplink source's
latest) and performs the switch it returns with SetCurrentProgramScene. It reads signals that hold while a
stream fails: OBS reconnecting, the kernel's view of the uplink, the share of frames dropped by the network
over 10 s, OBS's congestion averaged over 10 s. Not the raw congestion figure: a real OBS swings it between
0 and 1 as it drops frames to empty its buffer, so "above 0.5 for 5 s" never held on a failing stream.
The way back wants all of them quiet and no new dropped frame (hysteresis), for a while, after a minimum
hold time; if the streamer picks another scene by hand while it is active, it stands down.
Off by default: it changes what viewers see.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.models import ObsSample, UplinkSample
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
        self._dropped_total: int | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and bool(self.settings.scene)

    def _trouble(self, sample: ObsSample, uplink: UplinkSample | None) -> str | None:
        """Why the stream is failing now, or None."""
        if not sample.streaming:
            return None
        if sample.reconnecting and self.settings.on_reconnecting:
            return "OBS lost the connection to the ingest and is reconnecting"
        if uplink is not None and uplink.congested and self.settings.on_uplink_congested:
            return f"the uplink to the ingest cannot keep up ({uplink.congestion_reason or 'kernel view'})"
        dropped = sample.frames_dropped_network_ratio_10s
        if dropped is not None and dropped >= self.settings.drop_enter_ratio:
            return f"{dropped:.0%} of frames dropped by the network over 10 s"
        congestion = _congestion(sample)
        if congestion is not None and congestion >= self.settings.congestion_enter_ratio:
            return f"output congestion {congestion:.2f} on average (>= {self.settings.congestion_enter_ratio:g})"
        return None

    def _recovered(self, sample: ObsSample, uplink: UplinkSample | None) -> bool:
        dropped_total = sample.frames_dropped_network_total
        new_drops = (
            dropped_total is not None and self._dropped_total is not None and dropped_total > self._dropped_total
        )
        self._dropped_total = dropped_total
        if not sample.streaming:
            return True  # the stream ended: put the normal scene back for next time
        if sample.reconnecting or new_drops:
            return False
        if uplink is not None and uplink.congested and self.settings.on_uplink_congested:
            return False
        congestion = sample.output_congestion_ratio  # the raw figure: it is 0 once OBS keeps up again
        return congestion is None or congestion <= self.settings.congestion_exit_ratio

    def update(
        self, now: float, sample: ObsSample, program_scene: str | None, uplink: UplinkSample | None = None
    ) -> SceneSwitch | None:
        """Feed one sample (the scene on air, the uplink's latest reading); returns the switch to make, if any."""
        if not self.enabled or sample.connection != "connected":
            return None
        backup = self.settings.scene
        assert backup is not None
        if not self.active:
            self._dropped_total = sample.frames_dropped_network_total
            trouble = self._trouble(sample, uplink)
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
        if not self._recovered(sample, uplink):
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


def _congestion(sample: ObsSample) -> float | None:
    """OBS's congestion averaged over the window; the raw figure only from samples that lack the mean."""
    if sample.output_congestion_ratio_10s is not None:
        return sample.output_congestion_ratio_10s
    return sample.output_congestion_ratio

"""The backup-scene plan: switches on sustained trouble, back after recovery, never flaps."""

from __future__ import annotations

from agent.models import ObsSample
from agent.obs.backup import BackupScenePlan
from agent.settings import ObsBackupSceneSettings


def _plan(**overrides: object) -> BackupScenePlan:
    settings = {"enabled": True, "scene": "BRB", "enter_after_s": 5, "exit_after_s": 10, "min_hold_s": 30}
    settings.update(overrides)
    return BackupScenePlan(ObsBackupSceneSettings.model_validate(settings))


def _sample(congestion: float | None = 0.0, reconnecting: bool = False, streaming: bool = True) -> ObsSample:
    return ObsSample(
        connection="connected", streaming=streaming, reconnecting=reconnecting, output_congestion_ratio=congestion
    )


def test_backup_plan_is_off_by_default() -> None:
    plan = BackupScenePlan(ObsBackupSceneSettings())
    assert not plan.enabled
    assert all(plan.update(float(t), _sample(1.0), "Main") is None for t in range(60))


def test_switches_to_backup_only_after_congestion_lasts_and_back_after_recovery_and_hold() -> None:
    plan = _plan()
    assert plan.update(0.0, _sample(0.9), "Main") is None
    assert plan.update(4.0, _sample(0.9), "Main") is None  # not sustained yet
    switch = plan.update(5.0, _sample(0.9), "Main")
    assert switch is not None and switch.scene == "BRB" and switch.to_backup
    assert plan.active and "congestion" in (plan.reason or "")
    # Recovered at once, but the minimum hold time keeps the backup scene on air.
    for t in range(6, 35):
        assert plan.update(float(t), _sample(0.0), "BRB") is None
    back = plan.update(35.0, _sample(0.0), "BRB")
    assert back is not None and back.scene == "Main" and not back.to_backup
    assert not plan.active


def test_congestion_between_exit_and_enter_thresholds_neither_switches_nor_returns() -> None:
    plan = _plan(min_hold_s=0)
    for t in range(0, 6):
        plan.update(float(t), _sample(0.6), "Main")
    assert plan.active
    for t in range(6, 60):  # 0.3 is below enter (0.5) but above exit (0.15): hysteresis holds
        assert plan.update(float(t), _sample(0.3), "BRB") is None
    assert plan.active


def test_short_trouble_that_comes_and_goes_never_switches() -> None:
    plan = _plan()
    for t in range(0, 60):
        congestion = 0.9 if t % 4 == 0 else 0.0
        assert plan.update(float(t), _sample(congestion), "Main") is None


def test_lost_stream_reconnecting_switches_to_backup() -> None:
    plan = _plan(enter_after_s=2)
    plan.update(0.0, _sample(None, reconnecting=True), "Main")
    switch = plan.update(2.0, _sample(None, reconnecting=True), "Main")
    assert switch is not None and "reconnecting" in switch.reason


def test_plan_stands_down_when_the_streamer_switches_scene_by_hand() -> None:
    plan = _plan(enter_after_s=0)
    assert plan.update(0.0, _sample(0.9), "Main") is not None
    assert plan.update(1.0, _sample(0.9), "Gameplay") is None
    assert not plan.active and "by hand" in (plan.reason or "")

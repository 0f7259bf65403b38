"""The backup-scene plan: switches on sustained trouble, back after recovery, never flaps."""

from __future__ import annotations

from agent.models import ObsSample, UplinkSample
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


# OBS 29's congestion figure behind a 600 kbit/s link, once a second, while it drops 70-87 % of its frames.
REAL_OBS_CONGESTION = [0.9, 1.0, 0.0, 1.0, 0.0, 0.57, 1.0, 0.52, 0.0, 1.0, 0.0, 0.61, 1.0, 0.0, 0.95, 0.0]


def test_a_real_obs_failing_stream_switches_although_its_congestion_swings_to_zero() -> None:
    from agent.obs.derive import ObsDeriver

    deriver, plan = ObsDeriver(10.0), _plan()
    switched_at = None
    for t, congestion in enumerate(REAL_OBS_CONGESTION):
        total = 30 * (t + 1)
        status = {
            "outputActive": True,
            "outputCongestion": congestion,
            "outputSkippedFrames": 0,  # this run leaves drops out: the congestion mean alone must do it
            "outputTotalFrames": total,
            "outputBytes": 75_000 * (t + 1),
        }
        sample = deriver.update(float(t), {}, status)
        if plan.update(float(t), sample, "Main") is not None:
            switched_at = t
            break
    assert switched_at is not None and switched_at <= 7, "the raw figure's swings must not reset the clock"
    assert "on average" in (plan.reason or "")


def test_frames_dropped_by_the_network_switch_and_new_drops_hold_the_backup_scene() -> None:
    plan = _plan(min_hold_s=0, exit_after_s=5)
    dropped = 0
    for t in range(0, 6):
        dropped += 20
        switch = plan.update(float(t), _dropping(0.6, dropped, congestion=0.0 if t % 2 else 1.0), "Main")
    assert switch is not None and "dropped by the network" in switch.reason
    # The link came back but OBS still drops what it had queued: no way back while drops go on.
    for t in range(6, 16):
        dropped += 3
        assert plan.update(float(t), _dropping(0.04, dropped, congestion=0.0), "BRB") is None
    back = None
    for t in range(16, 30):
        back = back or plan.update(float(t), _dropping(0.0, dropped, congestion=0.0), "BRB")
    assert back is not None and back.scene == "Main"


def test_the_kernels_view_switches_and_blocks_the_way_back() -> None:
    plan = _plan(min_hold_s=0, exit_after_s=3)
    congested = UplinkSample(state="congested", congested=True, congestion_reason="RTT 190 ms against a 20 ms baseline")
    healthy = UplinkSample(state="ok", congested=False)
    switch = None
    for t in range(0, 6):
        switch = switch or plan.update(float(t), _sample(0.0), "Main", congested)
    assert switch is not None and "uplink" in switch.reason
    for t in range(6, 20):
        assert plan.update(float(t), _sample(0.0), "BRB", congested) is None
    back = None
    for t in range(20, 26):
        back = back or plan.update(float(t), _sample(0.0), "BRB", healthy)
    assert back is not None and back.scene == "Main"


def test_a_healthy_stream_is_never_switched() -> None:
    plan = _plan()
    healthy = UplinkSample(state="ok", congested=False)
    for t in range(0, 120):
        sample = _dropping(0.0, 0, congestion=0.02 if t % 7 == 0 else 0.0)
        assert plan.update(float(t), sample, "Main", healthy) is None


def _dropping(ratio: float, total: int, congestion: float) -> ObsSample:
    return ObsSample(
        connection="connected",
        streaming=True,
        output_congestion_ratio=congestion,
        frames_dropped_network_ratio_10s=ratio,
        frames_dropped_network_total=total,
    )

"""Dashboard state bookkeeping and the pure render functions: levels with labels, no-data states,
alert order and acknowledgement, preflight progress, sparklines."""

from __future__ import annotations

from agent.models import AlertChange
from tests.tui import data
from tui.render import BADGE_LABELS, fmt_duration, live_tiles, render_tile, sparkline, sparkline_rows, stream_state
from tui.state import DashboardState


def fresh_state() -> tuple[DashboardState, data.FixedClock]:
    clock = data.FixedClock()
    state = DashboardState(clock)
    state.set_connection("connected", "", None)
    return state, clock


def test_every_tile_says_no_data_with_a_reason_when_only_the_system_source_exists() -> None:
    state, _ = fresh_state()
    state.apply_snapshot(data.bare_snapshot())
    tiles = {tile.key: tile for tile in live_tiles(state)}
    for key in ("bitrate", "dropped", "ingest", "headroom"):
        assert tiles[key].level == "nodata", key
        assert tiles[key].notes, f"{key} explains why it has no data"
    assert tiles["cpu"].level == "ok"
    assert "no encoder source" in tiles["bitrate"].notes[0]


def test_high_values_raise_the_tile_level_and_the_label_says_it_in_words() -> None:
    state, _ = fresh_state()
    state.apply_snapshot(data.snapshot(cpu=0.97, dropped_ratio=0.03, bitrate_bps=2_400_000, rtt_ms=200))
    tiles = {tile.key: tile for tile in live_tiles(state)}
    assert tiles["cpu"].level == "critical"
    assert tiles["dropped"].level == "critical"
    assert tiles["bitrate"].level == "critical"  # 40% of the 6000 kb/s target
    assert tiles["ingest"].level == "warning"
    rendered = render_tile(tiles["cpu"], 24).plain
    assert BADGE_LABELS["critical"] in rendered
    assert all(len(line) <= 24 for line in rendered.splitlines())


def test_tiles_turn_stale_with_the_data_age_when_the_agent_is_unreachable() -> None:
    state, clock = fresh_state()
    state.apply_snapshot(data.snapshot())
    clock.advance(42)
    state.set_connection("disconnected", "connection refused", 2.0)
    tiles = live_tiles(state)
    assert {tile.level for tile in tiles} == {"stale"}
    assert tiles[0].spark_caption == "as of 42s ago"
    assert tiles[0].headline == "5.82 Mb/s"  # the last value is kept


def test_stream_state_reads_live_offline_and_reconnecting_from_obs() -> None:
    assert stream_state(data.snapshot(duration_s=3725)) == ("LIVE 1:02:05", "ok")
    assert stream_state(data.snapshot(streaming=False))[0] == "OFFLINE"
    reconnecting = data.snapshot()
    assert reconnecting.obs is not None
    reconnecting = reconnecting.model_copy(update={"obs": reconnecting.obs.model_copy(update={"reconnecting": True})})
    assert stream_state(reconnecting) == ("RECONNECTING", "critical")
    assert stream_state(None)[0] == "NO DATA"


def test_alerts_sort_critical_first_and_cleared_after_and_acknowledgement_resets_on_reraise() -> None:
    state, _ = fresh_state()
    warning = data.alert("warning", alert_id="cpu", seconds_ago=500)
    critical = data.alert("critical", seconds_ago=10)
    assert state.apply_alert_change(AlertChange(change="raised", alert=warning)) is False
    assert state.apply_alert_change(AlertChange(change="raised", alert=critical)) is True
    assert state.apply_alert_change(AlertChange(change="updated", alert=critical)) is False  # not new
    active, cleared = state.sorted_alerts()
    assert [alert.id for alert in active] == ["frames_dropped_network", "cpu"]
    assert state.acknowledge("cpu")
    assert [alert.id for alert in state.unacknowledged_active()] == ["frames_dropped_network"]
    cleared_cpu = warning.model_copy(update={"cleared_at": data.NOW})
    state.apply_alert_change(AlertChange(change="cleared", alert=cleared_cpu))
    active, cleared = state.sorted_alerts()
    assert [alert.id for alert in cleared] == ["cpu"]
    assert "cpu" in state.acknowledged  # stays listed, marked
    state.apply_alert_change(AlertChange(change="raised", alert=warning))
    assert "cpu" not in state.acknowledged


def test_alert_missing_from_a_snapshot_is_marked_cleared() -> None:
    state, _ = fresh_state()
    state.apply_snapshot(data.snapshot(alerts=[data.alert()]))
    state.apply_snapshot(data.snapshot(alerts=[]))
    active, cleared = state.sorted_alerts()
    assert active == [] and [alert.id for alert in cleared] == ["frames_dropped_network"]


def test_preflight_progress_marks_earlier_steps_done_and_the_report_is_read() -> None:
    from agent.models import JobFinished, Progress

    state, _ = fresh_state()
    state.apply_progress(Progress(job="preflight", job_id="j", step="ingest", fraction=0.2))
    state.apply_progress(Progress(job="preflight", job_id="j", step="bandwidth", fraction=0.6))
    steps = state.preflight.steps
    assert (steps["ingest"].done, steps["bandwidth"].done) == (True, False)
    assert state.preflight.running
    report = data.preflight_report("NO_GO")
    state.apply_job_finished(
        JobFinished(at=data.NOW, job="preflight", job_id="j", ok=True, report=report.model_dump(mode="json"))
    )
    assert state.preflight.report is not None and state.preflight.report.verdict == "NO_GO"
    assert not state.preflight.running and state.preflight.fraction == 1.0
    state.apply_job_finished(JobFinished(at=data.NOW, job="preflight", job_id="k", ok=True, report={"nonsense": 1}))
    assert state.preflight.error is not None and "could not read" in state.preflight.error


def test_sparkline_fits_the_width_with_the_newest_value_on_the_right() -> None:
    values = [float(v) for v in range(300)]
    line = sparkline(values, 20)
    assert len(line) == 20
    assert line[-1] == "█" and line[0] == "▁"
    assert sparkline([5.0, 5.0], 4, vmax=10.0) == "  ▄▄"  # half of vmax, right-aligned
    assert sparkline_rows([10.0, 5.0], 2, 2, vmax=10.0) == ["█ ", "██"]  # two rows: 5 fills the lower one
    assert sparkline([], 10) == ""


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert fmt_duration(3725) == "1:02:05"
    assert fmt_duration(None) == "—"


def test_sources_tile_says_obs_is_not_connected_instead_of_ok() -> None:
    from agent.models import ObsSample, SourceStatus
    from tui.render import source_view

    status = SourceStatus(name="obs", state="ok")
    closed = ObsSample(connection="not_connected", connection_detail="nothing answers at ws://127.0.0.1:4455")
    snapshot = data.bare_snapshot().model_copy(update={"obs": closed, "sources": {"obs": status}})
    level, label, detail = source_view(status, snapshot)
    assert (level, label) == ("warning", "UNREACHABLE")
    assert detail is not None and "4455" in detail
    connected = data.bare_snapshot().model_copy(update={"obs": ObsSample(connection="connected")})
    assert source_view(status, connected)[:2] == ("ok", "OK")
    assert source_view(SourceStatus(name="ffmpeg", state="starting"), connected)[1] == "NOT USED"
    assert source_view(SourceStatus(name="network", state="starting"), connected)[1] == "WAITING"


def test_a_source_nobody_uses_is_quiet_and_does_not_count_against_ok() -> None:
    from agent.models import SourceStatus
    from tui.render.tiles.sources import sources_tile
    from tui.state import DashboardState

    snap = data.snapshot()
    waiting_ffmpeg = SourceStatus(name="ffmpeg", state="starting")
    view = sources_tile(
        snap.model_copy(update={"sources": {**snap.sources, "ffmpeg": waiting_ffmpeg}}), DashboardState()
    )
    assert (view.headline, view.level) == ("3/3 ok", "ok")
    assert view.lines[-1].plain == "ffmpeg   not used"

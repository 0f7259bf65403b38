"""Deterministic data for the TUI tests: a fixed clock and snapshots with every source filled in,
fed to the app as the agent would send them (JSON events through `AgentClient.feed`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.models import (
    AgentInfo,
    Alert,
    AlertChange,
    AlertRecord,
    AlertTally,
    AlertTimelineEntry,
    BandwidthResult,
    EncoderProcess,
    EncoderSettings,
    FramesDropped,
    HealthSnapshot,
    JobFinished,
    LinkInfo,
    NetworkSample,
    ObsSample,
    PreflightCheck,
    PreflightReport,
    Progress,
    RecommendedSettings,
    ScorePart,
    SessionDetail,
    SourceStatus,
    Suggestion,
    SystemSample,
    TargetStability,
    TickRecord,
    TimeSpan,
    WorstMinute,
)

NOW = datetime(2026, 11, 25, 20, 15, 0, tzinfo=UTC)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def agent_info() -> AgentInfo:
    return AgentInfo(
        version="0.1.0",
        pid=4242,
        started_at=NOW - timedelta(hours=1),
        uptime_s=3600,
        platform="twitch",
        ingest_primary="rtmp://live.twitch.tv/app/[REDACTED]",
    )


def sources(**states: str) -> dict[str, SourceStatus]:
    result = {}
    for name in ("system", "network", "obs"):
        state = states.get(name, "ok")
        result[name] = SourceStatus(
            name=name,
            state=state,  # type: ignore[arg-type]
            last_sample_at=NOW,
            age_s=14.0 if state == "stale" else 0.4,
            error="OBS refused the password (close code 4009): check sources.obs.password"
            if state == "error"
            else None,
        )
    return result


def alert(severity: str = "critical", *, alert_id: str = "frames_dropped_network", seconds_ago: float = 95) -> Alert:
    return Alert(
        id=alert_id,
        kind=alert_id,
        severity=severity,  # type: ignore[arg-type]
        message="4.2% of frames dropped by the network over 10 s (limit 2%)"
        if alert_id == "frames_dropped_network"
        else "CPU at 93% for 30 s (limit 85%)",
        since=NOW - timedelta(seconds=seconds_ago),
        value=0.042,
        threshold=0.02,
        suggestions=[
            Suggestion(text="Lower the video bitrate to 4500 kb/s", why="the uplink carries 5.1 Mb/s at most"),
            Suggestion(text="Switch to the backup ingest", why="the primary loses 12% of probes", automatic=True),
        ],
    )


def snapshot(
    *,
    bitrate_bps: float = 5_820_000,
    dropped_ratio: float = 0.004,
    cpu: float = 0.46,
    rtt_ms: float = 38.0,
    alerts: list[Alert] | None = None,
    streaming: bool = True,
    duration_s: float = 5025,
    source_states: dict[str, str] | None = None,
    with_encoder: bool = True,
) -> HealthSnapshot:
    alerts = alerts or []
    system = SystemSample(
        taken_at=NOW,
        cpu_usage_ratio=cpu,
        cpu_per_core_ratio=[cpu] * 8,
        cpu_count_logical=8,
        load_average_1m=3.1,
        memory_total_bytes=16 << 30,
        memory_available_bytes=8 << 30,
        memory_used_ratio=0.5,
        swap_total_bytes=0,
        swap_used_ratio=0,
        upload_bps=6_100_000,
        encoder_process=EncoderProcess(
            pid=999, name="obs", cpu_core_ratio=0.82, memory_rss_bytes=900 << 20, kind="obs"
        ),
        encoder_cpu_core_ratio=0.82,
    )
    network = NetworkSample(
        taken_at=NOW,
        targets=[TargetStability(name="live.twitch.tv:1935", role="primary", reachable=True, rtt_p50_ms_10s=rtt_ms)],
        ingest_reachable=True,
        ingest_rtt_ms=rtt_ms,
        ingest_jitter_ms=4.2,
        ingest_loss_ratio=0.0,
        link=LinkInfo(interface="eth0", kind="wired"),
    )
    obs = ObsSample(
        taken_at=NOW,
        connection="connected",
        streaming=streaming,
        stream_duration_s=duration_s if streaming else None,
        output_bitrate_bps=bitrate_bps if streaming else None,
        output_congestion_ratio=0.02,
        frames_dropped_network_ratio_10s=dropped_ratio,
        frames_dropped_network_total=312,
        frames_skipped_encoding_ratio_10s=0.0,
        frames_skipped_encoding_total=4,
        frames_missed_rendering_ratio_10s=0.001,
        frames_missed_rendering_total=27,
        settings=EncoderSettings(video_bitrate_kbps=6000, audio_bitrate_kbps=160, width=1920, height=1080, fps=60),
    )
    bandwidth = BandwidthResult(
        backend="rtmp",
        target="live.twitch.tv:1935",
        started_at=NOW - timedelta(minutes=20),
        finished_at=NOW - timedelta(minutes=19),
        upload_bps=11_400_000,
        recommended_video_kbps=7800,
    )
    return HealthSnapshot(
        taken_at=NOW,
        agent=agent_info(),
        overall="critical" if any(a.severity == "critical" for a in alerts) else "warning" if alerts else "ok",
        sources=sources(**(source_states or {})),
        system=system,
        network=network,
        obs=obs if with_encoder else None,
        bandwidth=bandwidth if with_encoder else None,
        alerts=alerts,
    )


def bare_snapshot() -> HealthSnapshot:
    """What a fresh agent with only the system source sends: every other tile says 'no data'."""
    full = snapshot(with_encoder=False)
    return full.model_copy(update={"network": None, "sources": {"system": sources()["system"]}})


def tick_json(snap: HealthSnapshot) -> str:
    return TickRecord(snapshot=snap).model_dump_json()


def alert_json(change: str, alert_model: Alert) -> str:
    return AlertRecord(at=NOW, change=AlertChange(change=change, alert=alert_model)).model_dump_json()  # type: ignore[arg-type]


def progress_json(step: str, fraction: float, job_id: str = "job1", message: str = "") -> str:
    return Progress(job="preflight", job_id=job_id, step=step, fraction=fraction, message=message).model_dump_json()


def preflight_report(verdict: str = "GO_WITH_WARNINGS") -> PreflightReport:
    return PreflightReport(
        platform="twitch",
        started_at=NOW - timedelta(seconds=20),
        finished_at=NOW,
        verdict=verdict,  # type: ignore[arg-type]
        checks=[
            PreflightCheck(name="ingest reachable", status="pass", value="38 ms", message="live.twitch.tv answers"),
            PreflightCheck(
                name="upload bandwidth",
                status="warn",
                value="7.1 Mb/s",
                message="only 1.2x the 6000 kb/s video bitrate",
                suggestion="lower the video bitrate to 4500 kb/s",
            ),
            PreflightCheck(name="CPU headroom", status="pass", value="46%", message="enough for x264 veryfast"),
            PreflightCheck(name="Wi-Fi", status="skipped", message="wired link"),
        ],
        recommended=RecommendedSettings(
            video_bitrate_kbps=4500, audio_bitrate_kbps=160, resolution="1280x720", fps=60, keyframe_interval_s=2
        ),
    )


def job_finished_json(report: PreflightReport | None = None, job_id: str = "job1", error: str | None = None) -> str:
    return JobFinished(
        at=NOW,
        job="preflight",
        job_id=job_id,
        ok=error is None,
        error=error,
        report=report.model_dump(mode="json") if report else None,
    ).model_dump_json()


def session_detail(index: int = 0, *, status: str = "ended", reason: str | None = "stream_stopped") -> SessionDetail:
    """A stream session's summary as the agent serves it: an outage, some drops, one alert."""
    started = NOW - timedelta(days=index, hours=2)
    live_s = 3600.0 * (index + 1) + 125
    return SessionDetail(
        session_id=f"{started:%Y%m%dT%H%M%SZ}-a1b2c{index}",
        status=status,  # type: ignore[arg-type]
        started_at=started,
        ended_at=None if status == "live" else started + timedelta(seconds=live_s),
        end_reason=None if status == "live" else reason,  # type: ignore[arg-type]
        live_s=live_s,
        origins=["obs"],
        platform="twitch",
        target_bitrate_bps=6_160_000,
        output_bitrate_mean_bps=5_900_000 - index * 400_000,
        output_bitrate_min_bps=0,
        output_bitrate_p5_bps=4_100_000,
        frames_dropped=[
            FramesDropped(cause="network", frames=420 * (index + 1), of_frames=216_000, ratio=0.0019 * (index + 1))
        ],
        encoder_reconnects=index,
        rtt_p50_ms=38,
        rtt_p95_ms=71,
        jitter_p95_ms=6,
        loss_mean_ratio=0.001,
        loss_max_ratio=0.04,
        cpu_mean_ratio=0.41,
        cpu_max_ratio=0.93,
        alerts=[AlertTally(kind="frames_dropped_network", severity="critical", raised=index + 1)],
        alerts_raised=index + 1,
        worst_state="critical" if index else "warning",
        longest_outage=TimeSpan(
            start=started + timedelta(minutes=40), end=started + timedelta(minutes=40, seconds=12), duration_s=12.0
        ),
        outage_s=12.0,
        worst_minute=WorstMinute(start=started + timedelta(minutes=40), score=61.0, worst_state="critical"),
        health_score=92.5 - index * 15,
        health_parts=[
            ScorePart(name="availability", weight=35, score=0.997),
            ScorePart(name="frames", weight=25, score=0.96),
            ScorePart(name="bitrate", weight=20, score=0.95),
            ScorePart(name="alerts", weight=20, score=0.8),
        ],
        ticks_written=3725 + 3600 * index,
        ticks_expected=3725 + 3600 * index,
        alerts_timeline=[
            AlertTimelineEntry(
                at=started + timedelta(minutes=40),
                change="raised",
                alert_id="fdn",
                kind="frames_dropped_network",
                severity="critical",
                message="OBS dropped 4.1% of frames for the network over 10 s",
            ),
        ],
    )

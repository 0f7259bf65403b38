"""What the Live screen shows a technician, scene by scene, with the relay: idle, a healthy stream, a cut with
drops, the encoder lost and held with the slate. Built as the agent sends them (incidents, capacity, alerts)."""

from __future__ import annotations

from datetime import timedelta

from agent.models import (
    Alert,
    HealthSnapshot,
    ObsSample,
    RelayDestinationSample,
    RelayDrops,
    RelaySample,
    SourceStatus,
    TcpInfo,
    UplinkSample,
)
from agent.models.capacity import CapacityEstimate
from agent.models.incidents import Incident
from tests.tui import data

NOW = data.NOW


def ago(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _relay(**fields: object) -> RelaySample:
    drops = fields.pop("drops", RelayDrops())
    values: dict[str, object] = {
        "taken_at": NOW,
        "listen": "127.0.0.1:1935",
        "publishing": True,
        "ingress_bps": 2_540_000,
        "egress_bps": 2_500_000,
        "video_fps": 30.0,
        "queue_ms": 40,
        "frames_dropped": drops,
        "ingest_rtt_ms": 21.3,
        "ingest_retransmits_total": 3,
        "destinations": [
            RelayDestinationSample(
                name="ingest.test:1935",
                state="live",
                queue_ms=40,
                frames_dropped=drops,
                tcp_info=TcpInfo(rtt_ms=21.3, rtt_variance_ms=1.1, retransmits_total=3, bytes_acked=1),
            )
        ],
    }
    values.update(fields)
    return RelaySample.model_validate(values)


def _base(relay: RelaySample, *, obs: ObsSample | None, **update: object) -> HealthSnapshot:
    snap = data.snapshot()
    sources = {
        **snap.sources,
        "relay": SourceStatus(name="relay", state="ok", last_sample_at=NOW, age_s=0.3),
        "ffmpeg": SourceStatus(name="ffmpeg", state="starting"),  # nobody posts ffmpeg progress: not used
        "uplink": SourceStatus(name="uplink", state="ok", last_sample_at=NOW, age_s=0.2),
    }
    fields: dict[str, object] = {"relay": relay, "obs": obs, "sources": sources, "bandwidth": None}
    fields.update(update)
    return snap.model_copy(update=fields)


def _obs_streaming(bitrate_bps: float = 2_540_000) -> ObsSample:
    assert data.snapshot().obs is not None
    obs = data.snapshot().obs
    assert obs is not None
    settings = obs.settings.model_copy(update={"video_bitrate_kbps": 2500}) if obs.settings else None
    return obs.model_copy(update={"output_bitrate_bps": bitrate_bps, "settings": settings, "stream_duration_s": 754})


def idle() -> HealthSnapshot:
    obs = data.snapshot(streaming=False).obs
    return _base(_relay(publishing=False, ingress_bps=None, egress_bps=None, destinations=[]), obs=obs)


def healthy_stream() -> HealthSnapshot:
    capacity = CapacityEstimate(
        bps=2_500_000, source="relay_egress", lower_bound=True, measured_at=NOW - ago(1), note="not yet tested"
    )
    uplink = UplinkSample(
        taken_at=NOW, state="ok", rtt_ms=21.0, min_rtt_ms=20.2, unsent_bytes=0, delivery_rate_bps=2_600_000
    )
    incidents = [Incident(at=NOW - ago(754), kind="stream_started", text="encoder publishing to the relay")]
    return _base(_relay(), obs=_obs_streaming(), upload_capacity=capacity, uplink=uplink, incidents=incidents)


def relay_alert() -> Alert:
    return Alert(
        id="relay_dropping",
        kind="uplink_falling_behind",
        severity="critical",
        message="The relay is dropping 19.0 frames/s to keep the stream live: the uplink cannot carry the "
        "bitrate (queue 0 ms)",
        since=NOW - ago(6),
        value=19.0,
        threshold=0.01,
    )


def cut_with_drops() -> HealthSnapshot:
    drops = RelayDrops(until_keyframe=15, disposable=33)
    relay = _relay(egress_bps=310_000, queue_ms=0, frames_dropped_total=48, frames_dropped_per_s=19.0, drops=drops)
    uplink = UplinkSample(
        taken_at=NOW,
        state="congested",
        rtt_ms=412.0,
        min_rtt_ms=20.2,
        unsent_bytes=180_000,
        delivery_rate_bps=300_000,
        congested=True,
        suggested_video_bitrate_kbps=200,
    )
    capacity = CapacityEstimate(bps=300_000, source="kernel_delivery_rate", lower_bound=False, measured_at=NOW - ago(1))
    incidents = [
        Incident(
            at=NOW - ago(5),
            kind="relay_dropping",
            severity="critical",
            text="relay dropping 19 frames/s, queue 0 ms (inter 15, nonref 33)",
        ),
        Incident(
            at=NOW - ago(6), kind="alert_raised", severity="critical", text="CRITICAL alert: " + relay_alert().message
        ),
        Incident(
            at=NOW - ago(8),
            kind="link_slowed",
            severity="warning",
            text="link slowed: the kernel delivers 0.30 Mb/s, RTT 412 ms (base 20 ms)",
        ),
        Incident(at=NOW - ago(754), kind="stream_started", text="encoder publishing to the relay"),
    ]
    return _base(
        relay,
        obs=_obs_streaming(),
        uplink=uplink,
        upload_capacity=capacity,
        incidents=incidents,
        alerts=[relay_alert()],
        overall="critical",
    )


def held_with_slate() -> HealthSnapshot:
    relay = _relay(
        publishing=False, holding=True, hold_remaining_s=27.0, held_total_s=3.0, ingress_bps=None, video_fps=None
    )
    gone = ObsSample(
        taken_at=NOW, connection="not_connected", connection_detail="nothing answers at ws://127.0.0.1:4455"
    )
    incidents = [
        Incident(
            at=NOW - ago(3),
            kind="encoder_lost",
            severity="critical",
            text="encoder lost: the relay holds the broadcast for up to 30 s",
        ),
        Incident(at=NOW - ago(260), kind="link_back", text="link back: RTT 21 ms"),
        Incident(at=NOW - ago(266), kind="alert_cleared", text="alert cleared: " + relay_alert().message),
        *cut_with_drops().incidents,
    ]
    capacity = CapacityEstimate(
        bps=2_500_000, source="relay_egress", lower_bound=True, measured_at=NOW - ago(4), note="not yet tested"
    )
    return _base(relay, obs=gone, incidents=incidents, upload_capacity=capacity)


SCENES = {
    "idle": idle,
    "healthy_stream": healthy_stream,
    "cut_with_drops": cut_with_drops,
    "held_with_slate": held_with_slate,
}

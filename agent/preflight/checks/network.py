"""Preflight checks of the network: the link, the ingests, stability over the window, upload bandwidth."""

from __future__ import annotations

from agent.models import CheckStatus, PreflightCheck
from agent.preflight.checks.observation import Observation, make_check, values_of
from agent.rules.playbook import recommended_video_kbps

# Upload headroom: the same thresholds as the upload_headroom rule (configs/rules.toml).
HEADROOM_PASS, HEADROOM_WARN = 1.5, 1.1
RTT_WARN_MS, RTT_FAIL_MS = 150.0, 300.0
JITTER_WARN_MS = 30.0
LOSS_WARN, LOSS_FAIL = 0.01, 0.05


def check_link(o: Observation) -> PreflightCheck:
    last = o.last
    if last is None or last.network is None:
        return make_check("link", "skipped", "the network source is off or has not reported")
    link = last.network.link
    if last.network.on_wifi or link.kind == "wifi":
        signal = f", signal {link.wifi_signal_dbm:.0f} dBm" if link.wifi_signal_dbm is not None else ""
        return make_check(
            "link",
            "warn",
            "Wi-Fi loses packets in bursts",
            f"Wi-Fi ({link.interface}{signal})",
            "switch to wired Ethernet",
        )
    if link.kind == "wired":
        speed = f", {link.link_speed_mbps} Mbit/s" if link.link_speed_mbps else ""
        return make_check("link", "pass", "wired connection", f"wired ({link.interface}{speed})")
    if link.note:  # e.g. not available on this platform: say so rather than guess
        return make_check(
            "link",
            "skipped",
            f"wired or Wi-Fi: {link.note}",
            link.interface,
            "prefer wired Ethernet: Wi-Fi loses packets in bursts",
        )
    return make_check("link", "pass", "link type unknown (not Wi-Fi as far as the agent can tell)", link.interface)


def check_ingests(o: Observation) -> list[PreflightCheck]:
    last = o.last
    if last is None or not last.agent.ingest_primary:
        return [
            make_check(
                "ingest",
                "warn",
                "no ingest configured: the agent cannot check the path to your platform",
                suggestion="set ingest.primary to your platform's server and key",
            )
        ]
    if last.network is None:
        return [make_check("ingest", "skipped", "the network source is off or has not reported")]
    checks = []
    for target in last.network.targets:
        if target.role == "extra":
            continue
        name = f"ingest {target.role}"
        # Reachable at any time of the window: a single lost probe is for the stability check.
        seen = [
            t.reachable
            for s in o.snapshots
            if s.network is not None
            for t in s.network.targets
            if t.name == target.name and t.reachable is not None
        ]
        if not seen:
            checks.append(make_check(name, "warn", "not probed yet (the window was too short)", target.name))
        elif any(seen):
            rtt = f", {target.rtt_p50_ms_10s:.0f} ms" if target.rtt_p50_ms_10s is not None else ""
            checks.append(make_check(name, "pass", "reachable", f"{target.name}{rtt}"))
        else:
            status: CheckStatus = "fail" if target.role == "primary" else "warn"
            checks.append(
                make_check(
                    name,
                    status,
                    f"cannot be reached: {target.error or 'no answer'}",
                    target.name,
                    "check the server address, or use another ingest of your platform",
                )
            )
    return checks or [make_check("ingest", "skipped", "no ingest probed yet")]


def check_stability(o: Observation) -> PreflightCheck:
    rtts = values_of(o, lambda s: s.network.ingest_rtt_p95_ms if s.network else None)
    losses = values_of(o, lambda s: s.network.ingest_loss_ratio if s.network else None)
    jitters = values_of(o, lambda s: s.network.ingest_jitter_ms if s.network else None)
    if not rtts and not losses:
        return make_check("network stability", "skipped", "no round trips to the ingest were measured")
    rtt, loss = max(rtts, default=0.0), max(losses, default=0.0)
    jitter = max(jitters, default=0.0)
    value = f"RTT p95 {rtt:.0f} ms, jitter {jitter:.0f} ms, loss {loss:.1%}"
    if loss >= LOSS_FAIL or rtt >= RTT_FAIL_MS:
        return make_check(
            "network stability", "fail", "the path to the ingest is unreliable", value, "use a wired link"
        )
    if loss >= LOSS_WARN or rtt >= RTT_WARN_MS or jitter >= JITTER_WARN_MS:
        return make_check("network stability", "warn", "the path to the ingest is shaky", value, "use a wired link")
    return make_check("network stability", "pass", "steady path to the ingest", value)


def check_bandwidth(o: Observation) -> PreflightCheck:
    if o.live_uplink:
        return check_live_uplink(o)
    if o.bandwidth_skipped is not None:
        status: CheckStatus = "skipped" if o.bandwidth_skipped.startswith("--no-bandwidth") else "warn"
        return make_check("bandwidth", status, o.bandwidth_skipped)
    result = o.bandwidth
    if result is None or not result.ok or result.upload_bps is None:
        error = result.error if result is not None else "no result"
        return make_check("bandwidth", "warn", f"the upload could not be measured: {error}")
    needed_kbps = o.planned_video_kbps() + o.audio_kbps()
    headroom = result.upload_bps / (needed_kbps * 1000)
    value = f"{result.upload_bps / 1e6:.2f} Mbit/s sustained upload, {headroom:.2f}x the {needed_kbps} kbps stream"
    fits = recommended_video_kbps(result.upload_bps, o.audio_kbps(), o.playbook)
    suggestion = f"lower the video bitrate to {fits} kbps or use a faster connection"
    if headroom < HEADROOM_WARN:
        return make_check("bandwidth", "fail", "the uplink cannot carry this stream", value, suggestion)
    if headroom < HEADROOM_PASS:
        return make_check("bandwidth", "warn", "little upload headroom for this stream", value, suggestion)
    return make_check("bandwidth", "pass", "enough upload for this stream", value)


def check_live_uplink(o: Observation) -> PreflightCheck:
    """The upload of a stream already live, from its own connection: congested or getting through."""
    readings = o.uplink_readings()
    needed_kbps = o.planned_video_kbps() + o.audio_kbps()
    if not readings:
        return make_check("bandwidth", "warn", "the live stream's connection could not be read during the check")
    congested = [reading for reading in readings if reading.congested]
    if congested:
        last = congested[-1]
        link_bps = last.link_rate_bps or last.delivery_rate_bps or 0.0
        value = (
            f"{link_bps / 1e6:.2f} Mbit/s delivered on the live stream's connection, for a {needed_kbps} kbps stream"
        )
        fits = last.suggested_video_bitrate_kbps
        suggestion = f"lower the video bitrate to {fits} kbps" if fits else "lower the video bitrate"
        return make_check("bandwidth", "fail", "the live stream's uplink is congested", value, suggestion)
    delivery = max((r.delivery_rate_bps for r in readings if r.delivery_rate_bps is not None), default=None)
    base = min((r.min_rtt_ms for r in readings if r.min_rtt_ms is not None), default=None)
    rtt = max((r.rtt_ms for r in readings if r.rtt_ms is not None), default=None)
    value = (f"delivery rate up to {delivery / 1e6:.2f} Mbit/s" if delivery is not None else "no delivery rate") + (
        f", RTT at most {rtt:.0f} ms (baseline {base:.1f} ms)" if rtt is not None and base is not None else ""
    )
    message = "the live stream gets through without queueing (measured on its own connection; no test beside it)"
    return make_check("bandwidth", "pass", message, value)

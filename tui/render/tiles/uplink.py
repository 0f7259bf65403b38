"""The uplink lines of the ingest network tile: the kernel's view of the encoder's own connection.

RTT against its baseline, bytes waiting unsent, and the delivery rate against what the stream sends,
so a streamer sees the link stop keeping up before the encoder drops a frame.
"""

from __future__ import annotations

from rich.text import Text

from agent.models import HealthSnapshot
from tui.render.levels import Level
from tui.render.numbers import fmt_bps, fmt_ms
from tui.render.tile import detail_row


def stream_bitrate_bps(snapshot: HealthSnapshot) -> float | None:
    if snapshot.obs is not None and snapshot.obs.streaming and snapshot.obs.output_bitrate_bps:
        return snapshot.obs.output_bitrate_bps
    if snapshot.ffmpeg is not None and not snapshot.ffmpeg.ended:
        return snapshot.ffmpeg.bitrate_bps
    return None


def fmt_bytes(count: int | None) -> str:
    if count is None:
        return "—"
    return f"{count / 1024:.0f} KiB" if count >= 1024 else f"{count} B"


def uplink_level(snapshot: HealthSnapshot | None) -> Level:
    uplink = snapshot.uplink if snapshot else None
    if uplink is None or uplink.state not in ("ok", "congested"):
        return "nodata"
    return "warning" if uplink.congested else "ok"


def uplink_rows(snapshot: HealthSnapshot | None) -> list[Text]:
    """Short rows while a stream connection is read, most telling first (a short tile keeps the first);
    one saying why not otherwise; none without the source."""
    uplink = snapshot.uplink if snapshot else None
    if snapshot is None or uplink is None:
        return []
    if uplink.state not in ("ok", "congested"):
        return [detail_row("uplink", uplink.note or uplink.state)]
    level = uplink_level(snapshot)
    mark = level if level != "ok" else None
    rows = [detail_row("uplink", f"RTT {fmt_ms(uplink.rtt_ms)}, base {fmt_ms(uplink.min_rtt_ms)}", mark)]
    stream = stream_bitrate_bps(snapshot)
    delivery = fmt_bps(uplink.delivery_rate_bps) + (f" for {fmt_bps(stream)}" if stream else "")
    rows.append(detail_row("carries", delivery, mark))
    if uplink.unsent_bytes:
        rows.append(detail_row("unsent", fmt_bytes(uplink.unsent_bytes), mark))
    if uplink.congested and uplink.suggested_video_bitrate_kbps:
        rows.append(detail_row("fits", f"{uplink.suggested_video_bitrate_kbps} kbps video", mark))
    elif uplink.recovered_at_s_ago is not None:
        rows.append(detail_row("back", f"recovered {uplink.recovered_at_s_ago:.0f} s ago"))
    return rows

"""Exporting one session's records: JSON Lines as written, or CSV with one row per tick for spreadsheets.

Lines are copied as the agent wrote them (already redacted); nothing is re-serialised for JSONL, so an
export is byte-identical to the log and keeps fields this version does not know.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from agent.logs.session_index import session_lines
from agent.models import HealthSnapshot, TickRecord
from agent.sessions.live import live_origins, output_bitrate_bps

CSV_COLUMNS = (
    "taken_at",
    "overall",
    "live",
    "output_bitrate_bps",
    "fps",
    "frames_dropped_network_total",
    "frames_skipped_encoding_total",
    "frames_missed_rendering_total",
    "ffmpeg_drop_frames_total",
    "ingest_rtt_ms",
    "ingest_jitter_ms",
    "ingest_loss_ratio",
    "cpu_usage_ratio",
    "active_alerts",
)


def export_jsonl(paths: list[Path], session_id: str, out: TextIO) -> int:
    """Write the session's lines to `out`; the number of lines."""
    count = 0
    for line in session_lines(paths, session_id):
        out.write(line.decode("utf-8", "replace") + "\n")
        count += 1
    return count


def export_csv(paths: list[Path], session_id: str, out: TextIO) -> int:
    """Write one row per tick of the session to `out`; the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for snapshot in _ticks(paths, session_id):
        writer.writerow(_row(snapshot))
        count += 1
    return count


def _ticks(paths: list[Path], session_id: str) -> Iterator[HealthSnapshot]:
    for line in session_lines(paths, session_id):
        if b'"type":"tick"' not in line[:256]:
            continue
        try:
            yield TickRecord.model_validate_json(line).snapshot
        except ValidationError:
            continue


def _row(snapshot: HealthSnapshot) -> list[object]:
    obs, ffmpeg, network, system = snapshot.obs, snapshot.ffmpeg, snapshot.network, snapshot.system
    fps = obs.active_fps if obs is not None and obs.streaming else ffmpeg.fps if ffmpeg is not None else None
    return [
        snapshot.taken_at.isoformat(),
        snapshot.overall,
        "+".join(live_origins(snapshot)),
        _blank(output_bitrate_bps(snapshot)),
        _blank(fps),
        _blank(obs.frames_dropped_network_total if obs else None),
        _blank(obs.frames_skipped_encoding_total if obs else None),
        _blank(obs.frames_missed_rendering_total if obs else None),
        _blank(ffmpeg.drop_frames_total if ffmpeg else None),
        _blank(network.ingest_rtt_ms if network else None),
        _blank(network.ingest_jitter_ms if network else None),
        _blank(network.ingest_loss_ratio if network else None),
        _blank(system.cpu_usage_ratio if system else None),
        " ".join(alert.id for alert in snapshot.alerts),
    ]


def _blank(value: object) -> object:
    return "" if value is None else value

"""Small builders shared by the agent tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent.models import SystemSample, utc_now
from agent.settings import Settings, load_settings


def make_settings(tmp_path: Path, **environ: str) -> Settings:
    """Settings as a user would get them, with logs in `tmp_path` and any STREAMHEALTH_* overrides."""
    # Ten minutes of history: enough for any test, and within the point budget at the fastest interval (0.1 s).
    env = {
        "STREAMHEALTH_LOGS__DIR": str(tmp_path / "logs"),
        "STREAMHEALTH_API__PORT": "0",
        "STREAMHEALTH_SAMPLING__HISTORY_S": "600",
    }
    env.update({f"STREAMHEALTH_{name.upper()}": value for name, value in environ.items()})
    return load_settings(None, environ=env)


def system_sample(cpu: float = 0.1, taken_at: datetime | None = None) -> SystemSample:
    return SystemSample(
        taken_at=taken_at or utc_now(),
        cpu_usage_ratio=cpu,
        cpu_per_core_ratio=[cpu, cpu],
        cpu_count_logical=2,
        memory_total_bytes=8_000_000_000,
        memory_available_bytes=4_000_000_000,
        memory_used_ratio=0.5,
        swap_total_bytes=0,
        swap_used_ratio=0.0,
    )

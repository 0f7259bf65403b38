"""Answers of the HTTP API that are not records of their own: what the API serves and the TUI
(tui/client.py) reads, declared once so the two cannot drift (tests/tui/test_contract.py checks it)."""

from __future__ import annotations

from pydantic import Field

from agent.models.alerts import Alert
from agent.models.base import Contract


class AlertsView(Contract):
    active: list[Alert]
    recently_cleared: list[Alert]


class MetricNames(Contract):
    metrics: list[str]


class PreflightStarted(Contract):
    job_id: str
    job: str = "preflight"
    events: str = Field(description="Where progress and the report arrive (Server-Sent Events)")

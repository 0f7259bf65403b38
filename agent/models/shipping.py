"""Shipping records to a collector: the agent's shipping state and the collector's acknowledgement.

The same models are the wire contract on both ends: the agent puts `ShippingState` in its snapshot,
the collector answers an ingest with `IngestAck`. Record times are read here too (`record_time`), so
the agent and the collector agree on which field dates a record of any type, present or future.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from agent.models.base import Contract

ShippingStateName = Literal["connected", "connecting", "retrying", "rejected", "not_shipping"]

# How an agent names itself to the collector on each batch (lines carry only their `seq`).
AGENT_ID_HEADER = "X-Streamhealth-Agent-Id"
AGENT_NAME_HEADER = "X-Streamhealth-Agent-Name"
INGEST_PATH = "/api/v1/ingest"


class ShippingState(Contract):
    state: ShippingStateName = Field(
        description="connected: the last batch was acknowledged; retrying: the collector is unreachable or busy "
        "(backing off); rejected: the collector refused a batch or the token (see last_error); not_shipping: "
        "another agent ships this log folder or the health log is off."
    )
    connected: bool
    collector: str = Field(description="The collector's base URL.")
    agent_id: str
    lines_waiting: int = Field(description="Complete log lines not yet acknowledged by the collector.")
    oldest_waiting_age_s: float | None = Field(None, description="Age of the oldest line not yet acknowledged.")
    last_ack_at: datetime | None = None
    last_error: str | None = Field(None, description="Why the last attempt failed (redacted).")
    last_rejected: str | None = Field(
        None, description="The last batch the collector refused, why, and the file it is kept in (redacted)."
    )
    lines_shipped_total: int = 0
    retries_total: int = 0
    batches_set_aside_total: int = Field(0, description="Batches the collector rejected, kept in ship-rejected/.")
    unshipped_lines_deleted_total: int = Field(
        0, description="Lines deleted by log retention before they were shipped (the hard cap was reached)."
    )
    lines_skipped_total: int = Field(0, description="Torn or unreadable log lines that could not be shipped.")
    collector_last_seq: int | None = Field(
        None, description="The highest seq the collector said it holds for this agent (its last acknowledgement)."
    )
    collector_ahead_by_seqs: int = Field(
        0,
        description="How far collector_last_seq is past every seq this agent has written (0: it is not). Above 0, "
        "the collector holds records under this agent's id that this agent never sent.",
    )


class IngestAck(Contract):
    """The collector's answer to a batch, sent only after the batch is committed."""

    accepted: int = Field(description="Records stored by this batch.")
    duplicates: int = Field(description="Records of this batch the collector already held (a resent batch).")
    last_seq: int | None = Field(description="The highest seq the collector holds for this agent.")


def record_time(record: dict[str, Any]) -> str | None:
    """The ISO time of a log record of any type: `at`, else its snapshot's `taken_at`."""
    at = record.get("at")
    if isinstance(at, str):
        return at
    snapshot = record.get("snapshot")
    if isinstance(snapshot, dict):
        taken_at = snapshot.get("taken_at")
        if isinstance(taken_at, str):
            return taken_at
    return None

"""What the uplink is known to carry, and how the agent knows it: the one capacity figure rules and tiles share.

A bandwidth test measures capacity; the kernel's delivery rate of a connection that was not app-limited does
too. What an app-limited connection carries (the relay's egress, the encoder's output) proves only a lower
bound. The estimate says which, and when it was taken, so nothing treats a guess as a measurement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from agent.models.base import Contract

CapacitySource = Literal["bandwidth_test", "kernel_delivery_rate", "relay_egress", "encoder_output"]


class CapacityEstimate(Contract):
    bps: float = Field(description="Bits per second the uplink carries (at least, when lower_bound).")
    source: CapacitySource = Field(description="Where the figure comes from.")
    lower_bound: bool = Field(
        description="True when the sender, not the link, limited the rate: the link carries at least this much."
    )
    measured_at: datetime = Field(description="When the evidence was taken (UTC).")
    note: str | None = Field(None, description="A short human phrase, e.g. 'bandwidth test 4 min ago'.")

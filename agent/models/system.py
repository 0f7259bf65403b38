"""Samples of the system source: CPU, memory, network interfaces, power, disk, processes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from agent.models.base import Contract, Sample

EncoderKind = Literal["obs", "ffmpeg", "streamlabs", "tiktok_live_studio"]


class InterfaceRates(Contract):
    name: str
    is_up: bool
    link_speed_mbps: int | None = Field(None, description="Negotiated link speed; None where the OS does not say.")
    sent_bps: float = Field(description="Bits per second sent since the previous sample.")
    received_bps: float
    sent_bytes_total: int
    received_bytes_total: int


class ProcessUsage(Contract):
    pid: int
    name: str
    cpu_core_ratio: float = Field(description="CPU time used per second of wall time: 1.0 is one whole core.")
    memory_rss_bytes: int


class EncoderProcess(ProcessUsage):
    kind: EncoderKind


class BatteryState(Contract):
    charge_ratio: float
    on_battery: bool
    seconds_left: int | None = None


class DiskSpace(Contract):
    path: str = Field(description="The folder checked: where recordings go.")
    free_bytes: int
    total_bytes: int
    used_ratio: float


class SystemSample(Sample):
    SOURCE: ClassVar[str] = "system"
    NOT_HISTORY: ClassVar[frozenset[str]] = frozenset({"cpu_count_logical", "memory_total_bytes", "swap_total_bytes"})

    cpu_usage_ratio: float = Field(description="Whole-machine CPU use, 0..1.")
    cpu_per_core_ratio: list[float]
    cpu_count_logical: int
    load_average_1m: float | None = None
    memory_total_bytes: int
    memory_available_bytes: int
    memory_used_ratio: float
    swap_total_bytes: int
    swap_used_ratio: float
    default_route_interface: str | None = Field(None, description="The interface that carries the uplink.")
    upload_bps: float | None = Field(None, description="Bits per second sent on the default-route interface.")
    download_bps: float | None = None
    interfaces: list[InterfaceRates] = Field(default_factory=list)
    battery: BatteryState | None = None
    on_battery: bool = False
    disk: DiskSpace | None = None
    top_processes: list[ProcessUsage] = Field(default_factory=list)
    encoder_process: EncoderProcess | None = Field(None, description="The encoder found by process name, if any.")
    encoder_cpu_core_ratio: float | None = None
    encoder_memory_rss_bytes: int | None = None
    encoder_search: str | None = Field(
        None, description="Plain words on the encoder search, e.g. that no encoder process was found."
    )

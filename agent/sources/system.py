"""The system source: CPU, memory, uplink traffic, power, disk, busiest processes and the encoder.

Kept cheap because it runs beside an encoder that needs the CPU: the per-second reading touches only
aggregate counters and the one encoder process; walking every process (to rank the busiest and to
find the encoder) happens on a slower scan interval, in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import time

import psutil

from agent.models import (
    BatteryState,
    DiskSpace,
    EncoderProcess,
    InterfaceRates,
    ProcessUsage,
    SystemSample,
)
from agent.models.system import EncoderKind
from agent.net.route import default_route_interface
from agent.process_names import ProcessNames, encoder_kind
from agent.settings import SystemSourceSettings
from agent.sources.base import PollingSource

# While the machine is busier than this, the busiest processes are ranked every `process_scan_interval_s`
# (that is when "close X" matters); otherwise IDLE_SCAN_FACTOR times less often. Looking for an encoder
# that has not started yet costs only the processes started since the last look, every interval.
BUSY_CPU_RATIO = 0.5
IDLE_SCAN_FACTOR = 6

# Encoders in order of preference when several run at once: the streaming app beats a stray ffmpeg.
_ENCODER_PREFERENCE: tuple[EncoderKind, ...] = ("obs", "streamlabs", "tiktok_live_studio", "ffmpeg")


def _describe_encoder_search(encoder: EncoderProcess | None, last_scan_at: float) -> str:
    if encoder is not None:
        return f"found {encoder.name} (pid {encoder.pid})"
    if last_scan_at == -float("inf"):
        return "not searched yet"
    return "none found: no OBS, Streamlabs, TikTok LIVE Studio or ffmpeg process is running"


# Read on the scan interval, not every second: route, interface stats, battery, disk, swap.
_SlowFacts = tuple[
    str | None,
    dict[str, "psutil._common.snicstats"],
    BatteryState | None,
    DiskSpace | None,
    "psutil._common.sswap | None",
]


class _ProcessScan:
    """The slow part: rank processes by CPU and find the encoder.

    One read of /proc/<pid>/stat per process gives both the name and the CPU times (psutil's
    `process_iter` with attrs reads them in one `oneshot`); CPU use is the delta against the previous
    scan, so no second pass is needed. Memory is read only for the few processes reported.
    """

    def __init__(self, top_count: int) -> None:
        self.top_count = top_count
        self.own_pid = os.getpid()
        self._previous: dict[int, float] = {}
        self._previous_at: float | None = None
        self._names = ProcessNames()  # refreshed by each full scan, and cheaply between them

    def find_new_encoder(self) -> tuple[psutil.Process | None, EncoderKind | None]:
        """The encoder, looked for between full scans: one listing of the process table plus one read
        per process started since the last look (agent/process_names.py)."""
        found: list[tuple[psutil.Process, EncoderKind]] = self._names.matching(encoder_kind)
        if not found:
            return None, None
        return min(found, key=lambda entry: _ENCODER_PREFERENCE.index(entry[1]))

    def run(self) -> tuple[list[ProcessUsage], psutil.Process | None, EncoderKind | None]:
        now = time.monotonic()
        elapsed_s = None if self._previous_at is None else now - self._previous_at
        cpu_now: dict[int, float] = {}
        names: dict[int, str] = {}
        ranked: list[tuple[float, psutil.Process, str]] = []
        encoders: list[tuple[int, float, psutil.Process, EncoderKind]] = []
        for process in psutil.process_iter(["name", "cpu_times"]):
            info = process.info
            times = info.get("cpu_times")
            if times is None:
                continue  # access denied or gone
            name = info.get("name") or ""
            names[process.pid] = name
            total = times.user + times.system
            cpu_now[process.pid] = total
            before = self._previous.get(process.pid)
            cpu_ratio = (total - before) / elapsed_s if before is not None and elapsed_s else 0.0
            kind = encoder_kind(name)
            if kind is not None:
                encoders.append((_ENCODER_PREFERENCE.index(kind), -cpu_ratio, process, kind))
            if cpu_ratio > 0 and process.pid not in (0, self.own_pid):
                ranked.append((cpu_ratio, process, name))
        self._previous, self._previous_at = cpu_now, now
        self._names.replace(names)
        ranked.sort(key=lambda entry: entry[0], reverse=True)
        usages: list[ProcessUsage] = []
        for cpu_ratio, process, name in ranked[: self.top_count]:
            try:
                rss = process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            usages.append(
                ProcessUsage(pid=process.pid, name=name, cpu_core_ratio=round(cpu_ratio, 4), memory_rss_bytes=rss)
            )
        if not encoders:
            return usages, None, None
        encoders.sort(key=lambda entry: (entry[0], entry[1]))
        _, _, process, kind = encoders[0]
        return usages, process, kind


class SystemSource(PollingSource):
    name = "system"

    def __init__(self, settings: SystemSourceSettings, *, interval_s: float, timeout_s: float) -> None:
        super().__init__(interval_s=settings.interval_s or interval_s, timeout_s=timeout_s)
        self.settings = settings
        self._scan = _ProcessScan(settings.top_processes_count)
        self._last_scan_at = -float("inf")
        self._last_search_at = -float("inf")
        self._top: list[ProcessUsage] = []
        self._encoder: psutil.Process | None = None
        self._encoder_kind: EncoderKind | None = None
        self._slow_facts: _SlowFacts = (None, {}, None, None, None)
        self._previous_counters: tuple[float, dict[str, psutil._common.snetio]] | None = None
        self._last_cpu_ratio = 0.0
        psutil.cpu_percent(percpu=True)  # prime: the first call has nothing to compare with

    async def sample(self) -> SystemSample:
        now = time.monotonic()
        if now - self._last_scan_at >= self._scan_interval_s():
            self._last_scan_at = self._last_search_at = now
            # One trip to a worker thread (each trip is one more wake-up of the event loop).
            (self._top, self._encoder, self._encoder_kind), self._slow_facts = await asyncio.to_thread(
                lambda: (self._scan.run(), self._read_slow_facts())
            )
        elif self._encoder is None and now - self._last_search_at >= self.settings.process_scan_interval_s:
            self._last_search_at = now
            # On the loop: a listing of the process table and a read per new process, well under a millisecond.
            self._encoder, self._encoder_kind = self._scan.find_new_encoder()
        return self._read(now)

    def encoder_running(self) -> bool | None:
        """Whether an encoder process runs, as of the last look (None before the first look)."""
        if self._last_scan_at == -float("inf"):
            return None
        return self._encoder is not None

    def _scan_interval_s(self) -> float:
        """Rank the busiest processes often while the machine is busy (that is when they matter:
        "close X"); otherwise a few times a minute is plenty."""
        interval_s = self.settings.process_scan_interval_s
        return interval_s if self._last_cpu_ratio >= BUSY_CPU_RATIO else interval_s * IDLE_SCAN_FACTOR

    def _read_slow_facts(self) -> _SlowFacts:
        route_interface = default_route_interface()
        try:
            interface_stats = psutil.net_if_stats()
        except OSError:
            interface_stats = {}
        battery = None
        try:
            reading = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
        except (OSError, RuntimeError):
            reading = None
        if reading is not None:
            battery = BatteryState(
                charge_ratio=round(reading.percent / 100.0, 3),
                on_battery=not reading.power_plugged if reading.power_plugged is not None else False,
                seconds_left=reading.secsleft if isinstance(reading.secsleft, int) and reading.secsleft >= 0 else None,
            )
        disk = None
        try:
            usage = psutil.disk_usage(str(self.settings.recordings_dir))
            disk = DiskSpace(
                path=str(self.settings.recordings_dir),
                free_bytes=usage.free,
                total_bytes=usage.total,
                used_ratio=round(usage.percent / 100.0, 4),
            )
        except OSError:
            pass  # the folder may not exist yet; no disk reading is better than a wrong one
        # Swap moves slowly and psutil reads all of /proc/vmstat for it: once per scan is enough.
        swap = psutil.swap_memory()
        return route_interface, interface_stats, battery, disk, swap

    def _read(self, now: float) -> SystemSample:
        per_core = [round(value / 100.0, 4) for value in psutil.cpu_percent(percpu=True)]
        self._last_cpu_ratio = sum(per_core) / len(per_core) if per_core else 0.0
        memory = psutil.virtual_memory()
        route_interface, interface_stats, battery, disk, swap = self._slow_facts
        interfaces, upload_bps, download_bps = self._interface_rates(now, route_interface, interface_stats)
        encoder, encoder_cpu, encoder_rss = self._encoder_usage()
        try:
            load_1m: float | None = os.getloadavg()[0]
        except (AttributeError, OSError):
            load_1m = None
        return SystemSample(
            cpu_usage_ratio=round(sum(per_core) / len(per_core), 4) if per_core else 0.0,
            cpu_per_core_ratio=per_core,
            cpu_count_logical=len(per_core),
            load_average_1m=load_1m,
            memory_total_bytes=memory.total,
            memory_available_bytes=memory.available,
            memory_used_ratio=round(memory.percent / 100.0, 4),
            swap_total_bytes=swap.total if swap else 0,
            swap_used_ratio=round(swap.percent / 100.0, 4) if swap else 0.0,
            default_route_interface=route_interface,
            upload_bps=upload_bps,
            download_bps=download_bps,
            interfaces=interfaces,
            battery=battery,
            on_battery=bool(battery and battery.on_battery),
            disk=disk,
            top_processes=self._top,
            encoder_process=encoder,
            encoder_cpu_core_ratio=encoder_cpu,
            encoder_memory_rss_bytes=encoder_rss,
            encoder_search=_describe_encoder_search(encoder, self._last_scan_at),
        )

    def _interface_rates(
        self, now: float, route_interface: str | None, interface_stats: dict[str, psutil._common.snicstats]
    ) -> tuple[list[InterfaceRates], float | None, float | None]:
        counters = psutil.net_io_counters(pernic=True)
        previous = self._previous_counters
        self._previous_counters = (now, counters)
        if previous is None:
            return [], None, None
        elapsed_s = now - previous[0]
        if elapsed_s <= 0:
            return [], None, None
        rates: list[InterfaceRates] = []
        upload_bps = download_bps = None
        for name, current in counters.items():
            before = previous[1].get(name)
            if before is None or name == "lo":
                continue
            # Counters that go backwards (interface reset, 32-bit wrap) start a new baseline.
            sent_bps = max(0, current.bytes_sent - before.bytes_sent) * 8 / elapsed_s
            received_bps = max(0, current.bytes_recv - before.bytes_recv) * 8 / elapsed_s
            stats = interface_stats.get(name)
            rates.append(
                InterfaceRates(
                    name=name,
                    is_up=bool(stats.isup) if stats else True,
                    link_speed_mbps=(stats.speed or None) if stats else None,
                    sent_bps=round(sent_bps, 1),
                    received_bps=round(received_bps, 1),
                    sent_bytes_total=current.bytes_sent,
                    received_bytes_total=current.bytes_recv,
                )
            )
            if name == route_interface:
                upload_bps, download_bps = round(sent_bps, 1), round(received_bps, 1)
        return rates, upload_bps, download_bps

    def _encoder_usage(self) -> tuple[EncoderProcess | None, float | None, int | None]:
        process, kind = self._encoder, self._encoder_kind
        if process is None or kind is None:
            return None, None, None
        try:
            with process.oneshot():
                cpu_ratio = round(process.cpu_percent(None) / 100.0, 4)
                rss = process.memory_info().rss
                name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._encoder = self._encoder_kind = None  # gone: the next scan looks again
            self._last_scan_at = -float("inf")
            return None, None, None
        encoder = EncoderProcess(pid=process.pid, name=name, cpu_core_ratio=cpu_ratio, memory_rss_bytes=rss, kind=kind)
        return encoder, cpu_ratio, rss

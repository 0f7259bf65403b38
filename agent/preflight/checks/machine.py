"""Preflight checks of the machine: CPU, memory, recording disk, power."""

from __future__ import annotations

import statistics

from agent.models import PreflightCheck
from agent.preflight.checks.observation import Observation, make_check, values_of

CPU_PASS, CPU_WARN = 0.60, 0.85
MEMORY_PASS, MEMORY_WARN = 0.80, 0.92
DISK_PASS_BYTES, DISK_WARN_BYTES = 20e9, 5e9


def check_cpu(o: Observation) -> PreflightCheck:
    usage = values_of(o, lambda s: s.system.cpu_usage_ratio if s.system else None)
    if not usage:
        return make_check("CPU", "skipped", "the system source is off or has not reported")
    last = o.last
    cores = last.system.cpu_count_logical if last is not None and last.system is not None else 0
    mean, peak = statistics.fmean(usage), max(usage)
    value = f"{mean:.0%} busy on average, {peak:.0%} at peak, {cores} logical cores"
    if mean >= CPU_WARN:
        return make_check("CPU", "fail", "the CPU is already nearly full before streaming", value, _close_busy(o))
    if mean >= CPU_PASS or cores < 4:
        why = "little CPU headroom left for the encoder" if mean >= CPU_PASS else "few cores for software encoding"
        return make_check("CPU", "warn", why, value, "use a hardware encoder (NVENC, Quick Sync, AMF) or x264 veryfast")
    return make_check("CPU", "pass", "enough CPU headroom for the encoder", value)


def _close_busy(o: Observation) -> str:
    last = o.last
    if last is None or last.system is None or not last.system.top_processes:
        return "close programs you do not need while streaming"
    names = ", ".join(p.name for p in last.system.top_processes[:3])
    return f"close programs you do not need while streaming (busiest now: {names})"


def check_memory(o: Observation) -> PreflightCheck:
    used = values_of(o, lambda s: s.system.memory_used_ratio if s.system else None)
    if not used:
        return make_check("memory", "skipped", "the system source is off or has not reported")
    peak = max(used)
    value = f"{peak:.0%} in use"
    if peak >= MEMORY_WARN:
        return make_check("memory", "fail", "memory is nearly full: the encoder may stall", value, _close_busy(o))
    if peak >= MEMORY_PASS:
        return make_check("memory", "warn", "memory is getting full", value, _close_busy(o))
    return make_check("memory", "pass", "enough free memory", value)


def check_disk(o: Observation) -> PreflightCheck:
    last = o.last
    disk = last.system.disk if last is not None and last.system is not None else None
    if disk is None:
        return make_check("disk", "skipped", "free space where recordings go is unknown")
    total_kbps = o.planned_video_kbps() + o.audio_kbps()
    minutes = disk.free_bytes * 8 / (total_kbps * 1000) / 60
    value = f"{disk.free_bytes / 1e9:.1f} GB free in {disk.path} (about {minutes:.0f} min of recording)"
    if disk.free_bytes < DISK_WARN_BYTES:
        return make_check("disk", "fail", "too little space to record this stream", value, f"free space on {disk.path}")
    if disk.free_bytes < DISK_PASS_BYTES:
        return make_check("disk", "warn", "space for a short recording only", value, f"free space on {disk.path}")
    return make_check("disk", "pass", "enough space to record", value)


def check_power(o: Observation) -> PreflightCheck:
    last = o.last
    if last is None or last.system is None:
        return make_check("power", "skipped", "the system source is off or has not reported")
    if last.system.on_battery:
        charge = last.system.battery.charge_ratio if last.system.battery else None
        value = f"on battery ({charge:.0%})" if charge is not None else "on battery"
        return make_check(
            "power", "warn", "laptops slow the CPU and network on battery", value, "plug in the power supply"
        )
    return make_check("power", "pass", "on mains power", "mains" if last.system.battery else "no battery")

"""What the CPU is, from /proc/cpuinfo: `optimize` picks its CPU defaults by vendor (BENCHMARKS.md)."""
from __future__ import annotations


def cpuinfo(key: str) -> str:
    """The first `key : value` line's value in /proc/cpuinfo; "" where there is none (or no /proc)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_vendor() -> str:
    """`GenuineIntel`, `AuthenticAMD`, ...; "" where it cannot be read."""
    return cpuinfo("vendor_id")

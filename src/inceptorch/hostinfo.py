"""What the machine is, from /proc/cpuinfo: for recorded figures (bench) and for CPU-dependent defaults (optimize)."""
from __future__ import annotations

import platform


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


def cpu_name() -> str:
    return cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """`GenuineIntel`, `AuthenticAMD`, ...; "" where it cannot be read."""
    return cpuinfo("vendor_id")

"""What a recorded figure needs next to it (BENCHMARKS.md): the machine, how busy it was, the versions, the date."""
from __future__ import annotations

import datetime
import os
import platform

import torch

from ..fast.cpuinfo import cpuinfo


def cpu_name() -> str:
    return cpuinfo("model name") or platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    """Device, versions, date and load of this run, for the JSON of every benchmark."""
    import torchvision

    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
           # A busy machine slows both sides (interleaving shares the slowdown) but adds noise: say how busy.
           "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
           "cpu_count": os.cpu_count()}
    try:
        import timm

        env["timm"] = timm.__version__
    except ImportError:
        pass
    return env

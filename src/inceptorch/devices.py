"""One device convention for every command and recipe: `auto`, `cpu`, `cuda` or `cuda:N`.

`auto` (the default) is the first CUDA device when torch sees one, else the CPU. `check_device_name` checks the
spelling only (a recipe may name a GPU the machine that reads it lacks); `resolve_device` also checks that the
device exists here.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import torch

DEVICE_HELP = "auto (a CUDA device if torch sees one, else the CPU), cpu, cuda or cuda:N"
_SPELLING = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(name: str | None) -> str:
    """`name` if it is spelled as the convention says (None means auto); raises UserError otherwise."""
    name = "auto" if name is None else name
    if not isinstance(name, str) or not _SPELLING.fullmatch(name):
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, not {name!r}")
    return name


def resolve_device(name: str | None) -> torch.device:
    """The torch device `name` means on this machine; a GPU torch does not see is a UserError."""
    import torch  # here, not at import: the command line's parser is built without torch

    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: torch sees no CUDA device")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: torch sees {count} CUDA device{'s' if count != 1 else ''} "
                            f"(cuda:0 to cuda:{count - 1})")
    return device


def prefers_channels_last(device: torch.device, model_cfg) -> bool:
    """Whether a model runs, training and inference alike, in channels_last (NHWC) memory on `device`: on a GPU
    always (its tensor-core convs take NHWC), on the CPU unless the model's `default_cfg.cpu_channels_last` says
    NCHW measured faster (BENCHMARKS.md, CPU layout)."""
    return device.type == "cuda" or getattr(model_cfg, "cpu_channels_last", True)

"""Arguments shared by the subcommands that run a trained model (eval, predict)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError
from ..evaluation.options import PROTOCOLS

if TYPE_CHECKING:
    import torch


def add_model_args(p) -> None:
    p.add_argument("--checkpoint", action="append", required=True, metavar="CKPT_OR_RUN_DIR",
                   help="model file or run folder; repeat it to average an ensemble (paper: 7 models)")
    p.add_argument("--crops", type=int, choices=PROTOCOLS, default=1,
                   help="1: center crop; 10: corners + center, mirrored; 144: the GoogLeNet paper's protocol")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")


def pick_device(name: str | None) -> torch.device:
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available here")
    return device

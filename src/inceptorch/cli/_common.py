"""Arguments shared by the subcommands that run a trained model (eval, predict), and the --device flag of all."""
from __future__ import annotations

from ..devices import DEVICE_HELP
from ..evaluation.crops import PROTOCOLS


def add_model_args(p) -> None:
    p.add_argument("--checkpoint", action="append", required=True, metavar="CKPT_OR_RUN_DIR",
                   help="model file or run folder; repeat it to average an ensemble (paper: 7 models)")
    p.add_argument("--crops", type=int, choices=PROTOCOLS, default=1,
                   help="1: center crop; 10: corners + center, mirrored; 144: the GoogLeNet paper's protocol")
    add_device_argument(p)


def add_device_argument(p, default: str | None = None) -> None:
    """--device, the same everywhere (`devices.resolve_device` reads it); None: the recipe's, else auto."""
    p.add_argument("--device", default=default, metavar="DEVICE",
                   help=f"{DEVICE_HELP} (default: {default or 'auto'})")

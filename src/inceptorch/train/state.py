"""The training-state checkpoint: everything `--resume` needs to continue a run exactly, in one file.

`last.state.pt` holds the model and EMA weights, optimizer and scheduler states, the position (epoch, step,
batches done in the epoch), the best score so far, the running epoch meters and the RNG states. Only tensors and
plain containers go in, so it loads with `torch.load(weights_only=True)`. One file written atomically means a
resume never sees weights from one step and an optimizer from another.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

import torch

from ..errors import UserError, first_line
from ..fileio import atomic_write

STATE_NAME = "last.state.pt"
DIVERGED_NAME = "diverged.state.pt"


def rng_state() -> dict:
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": [version, list(internal), gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | Path, state: dict) -> None:
    """Serialised in memory first, then written by Python: a full disk is then an OSError that names itself
    (ENOSPC), where torch's own file writer reports only "unexpected pos"."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getbuffer()))


def load_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cannot resume: {path} not found (the run saved no training state yet)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (a truncated or foreign file, whatever torch raises: one line)
        raise UserError(f"cannot read training state {path}: {first_line(exc, 160)}") from None

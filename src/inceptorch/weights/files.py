"""Weight files on disk: their tensors read safely, whatever library wrote them, and what a wrong file is.

Nothing here runs pickled code: safetensors files are plain tensors, and `.pth` files go through
`torch.load(weights_only=True)`, which refuses anything but tensors and plain containers. Telling what a file is
reads only its structure (magic numbers, a zip archive's member names); nothing is unpickled or decoded.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import Tensor

from ..errors import UserError, first_line
from ..fileio import DIGEST_KEY, state_digest

StateDict = dict[str, Tensor]
_WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")  # how training scripts nest weights


def read_state_dict(path: str | Path) -> StateDict:
    """The tensors in a `.safetensors`, `.pth`, `.pt` or `.bin` file, unwrapped from a training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            state = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                recorded = (f.metadata() or {}).get(DIGEST_KEY)
            if recorded is not None and recorded != state_digest(state):
                raise UserError(f"refusing {path}: its weights differ from the checksum recorded when it was saved "
                                "(the file was modified or damaged)")
            return state
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(f"refusing {path}: it needs unsafe (pickled code) loading ({first_line(exc)})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, SafetensorError) as exc:
        raise UserError(f"cannot read weights file {path}: truncated or corrupt ({first_line(exc)})") from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DDP-wrapped saves


def file_kind(path: str | Path) -> str | None:
    """A short description ("a PyTorch checkpoint (torch.save)", ...), or None for a safetensors file (whose own
    parser describes its damage best) and for a file that cannot be read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a pickle (torch.save's legacy format, or Python's pickle)"
    if path.suffix.lower() == ".onnx":
        return "an ONNX file (eval, predict and serve run it through ONNX Runtime)"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 file (Keras?)"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 100_000_000:
        return None  # safetensors (length-prefixed JSON header), damaged: the parser's own message says more
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON file (a saved folder's config.json? give the folder)"
    return "not a model file (no format recognised)"


def is_int8_model(path: str | Path) -> bool:
    """Whether `path` is an int8 model file `inceptorch quantize` wrote: TorchScript carrying our metadata."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/extra/inceptorch.json") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a damaged zip archive"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "a TorchScript file (torch.jit.save; `inceptorch quantize` writes these)"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "a PyTorch checkpoint (torch.save)"
    return "a zip archive"

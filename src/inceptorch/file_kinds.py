"""What a file is, from its first bytes: to tell a user who gave the wrong file what they gave.

Only the structure is read (magic numbers, a zip archive's member names); nothing is unpickled or decoded.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path


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

"""`torch.export` programs saved as `.pt2`: a graph with its weights that runs without our Python classes.

`torch.export.load` falls back to full (code-running) unpickling when a pickled entry does not load safely; we
check every pickled entry of the archive with `weights_only=True` first and refuse the file otherwise.
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError, first_line
from ..fileio import atomic_write
from ._deploy import inference_copy
from .preprocess import preprocessing

EXTRA_FILE = "inceptorch.json"


def export_program(model: nn.Module, path: str | Path, input_size: int | None = None,
                   class_names: list[str] | None = None) -> Path:
    """Export `model`'s eval forward (no aux heads) with a dynamic batch dimension and save it to `path` (.pt2)."""
    model = inference_copy(model)
    pre = preprocessing(model, input_size)
    example = torch.randn(2, 3, pre["input_size"], pre["input_size"])  # batch 2: batch 1 would be specialised
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    names = list(class_names if class_names is not None else getattr(model, "class_names", None) or [])
    meta = {"model": getattr(model, "model_name", ""), "model_kwargs": getattr(model, "model_kwargs", {}),
            "class_names": names, "preprocessing": pre}
    buffer = io.BytesIO()  # torch names the archive's inner folder after the file; a buffer keeps it stable
    torch.export.save(program, buffer, extra_files={EXTRA_FILE: json.dumps(meta)})
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    return Path(path)


def load_program(path: str | Path) -> tuple[torch.export.ExportedProgram, dict]:
    """(program, metadata) from a `.pt2` file; `program.module()` is the callable model."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"program file not found: {path}")
    check_pickles(path)
    extra = {EXTRA_FILE: ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt archive
        raise UserError(f"cannot load {path}: {first_line(exc, 160)}") from None
    return program, json.loads(extra[EXTRA_FILE] or "{}")


def check_pickles(path: Path) -> None:
    """Refuse a .pt2 archive with a pickled entry that needs more than tensors and plain containers."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickled = [n for n in names if _is_pickled(n)]
            for name in names:
                if name.endswith("_config.json"):  # weights/constants configs mark their pickled entries
                    folder = name.rsplit("/", 1)[0]
                    entries = json.loads(archive.read(name)).get("config", {}).values()
                    pickled += [f"{folder}/{e['path_name']}" for e in entries if e.get("use_pickle")]
            for name in pickled:
                try:
                    torch.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True)
                except pickle.UnpicklingError as exc:
                    raise UserError(f"refusing {path}: entry {name} needs unsafe (pickled code) loading "
                                    f"({first_line(exc)})") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RuntimeError) as exc:
        raise UserError(f"cannot read {path}: truncated or not a .pt2 archive ({first_line(exc)})") from None


def _is_pickled(name: str) -> bool:
    return name.endswith((".pt", ".pkl", ".pth")) or "/sample_inputs/" in name
